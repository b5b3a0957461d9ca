//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// report is everything one run measured.
type report struct {
	d                 *driver
	args              []string
	machine           machine
	started, finished time.Time
	loadEnd           string // /proc/loadavg at the end
	series            []*seriesResult
	starved           []*seriesResult // the starvation section's series
	tput              []tputRun
	idle              resources
	scaleW, scaleL    []scalePoint
	systemd           *systemdRun // nil when the section was not asked for
	gate              []gateResult
	memory            []memRun
	long              []longRun
}

func (r *seriesResult) failed() int64 {
	if r.load == nil {
		return 0
	}
	return r.load.FailedTotal()
}

func (r *seriesResult) summary() string {
	s := fmt.Sprintf("%d cycles, p50 %v, p95 %v", len(r.cycles), ms(totals(r.cycles).pct(50)), ms(totals(r.cycles).pct(95)))
	if r.load != nil {
		s += fmt.Sprintf("; %d requests, %d failed %v", r.load.Requests, r.load.FailedTotal(), r.load.Failed)
	}
	if r.err != nil {
		s += "; ERROR: " + r.err.Error()
	}
	return s
}

// failed reports whether any part of the run could not be measured.
func (rep *report) failed() bool {
	for _, s := range append(slices.Clone(rep.series), rep.starved...) {
		if s.err != nil || (s.hog != nil && s.hog.err != nil) {
			return true
		}
	}
	for _, t := range rep.tput {
		if t.err != nil {
			return true
		}
	}
	for _, p := range append(slices.Clone(rep.scaleW), rep.scaleL...) {
		if p.err != nil {
			return true
		}
	}
	if sr := rep.systemd; sr != nil {
		if sr.err != nil {
			return true
		}
		for _, s := range sr.series {
			if s.err != nil {
				return true
			}
		}
	}
	for _, g := range rep.gate {
		if g.err != nil {
			return true
		}
	}
	for _, r := range rep.memory {
		if r.err != nil {
			return true
		}
	}
	for _, l := range rep.long {
		if l.err != nil {
			return true
		}
	}
	return rep.idle.err != nil
}

// ms formats a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func (rep *report) write(w io.Writer) {
	d := rep.d
	m := rep.machine
	fmt.Fprintf(w, "# baton benchmark run\n\n")
	fmt.Fprintf(w, "- command: `go run ./bench/cmd/driver %s`\n", strings.Join(rep.args, " "))
	fmt.Fprintf(w, "- date: %s, took %v\n", rep.started.UTC().Format("2006-01-02 15:04 MST"), rep.finished.Sub(rep.started).Round(time.Second))
	fmt.Fprintf(w, "- machine: %d CPUs (%s), memory %s, %s, %s\n", m.cpus, m.cpuModel, m.memTotal, m.kernel, m.goVersion)
	fmt.Fprintf(w, "- %s; %s", m.batonVersion, m.nginxVersion)
	if m.haproxyVersion != "" {
		fmt.Fprintf(w, "; %s", m.haproxyVersion)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- load average (/proc/loadavg) at start: %s; at end: %s\n", m.loadStart, rep.loadEnd)
	procs := "GOMAXPROCS the Go default (one per CPU)"
	if d.workerProcs > 0 {
		procs = fmt.Sprintf("GOMAXPROCS=%d", d.workerProcs)
	}
	fmt.Fprintf(w, "- load: %d clients, request timeout %v, no retries; reference worker `hello -drain %v` (%s); %d workers per system in the cycle series; cycles %v apart; every server in a session of its own (setsid), as a service manager starts it\n\n",
		d.clients, d.timeout, d.drain, procs, d.workers, d.gap)
	if m.free != "" {
		fmt.Fprintf(w, "```\n$ free -h\n%s\n```\n\n", m.free)
	}
	rep.writeTargets(w)
	if len(rep.series) > 0 {
		rep.writeSeries(w)
		rep.writePhases(w)
		rep.writeDetail(w)
	}
	if len(rep.starved) > 0 {
		rep.writeStarvation(w)
	}
	if rep.systemd != nil {
		rep.writeSystemd(w)
	}
	if len(rep.tput) > 0 {
		rep.writeThroughput(w)
	}
	if rep.idle.window > 0 {
		rep.writeResources(w)
	}
	if len(rep.scaleW)+len(rep.scaleL) > 0 {
		rep.writeScaling(w)
	}
	if len(rep.gate) > 0 {
		rep.writeGate(w)
	}
	if len(rep.memory) > 0 {
		rep.writeMemory(w)
	}
	if len(rep.long) > 0 {
		rep.writeLongLived(w)
	}
	rep.writeErrors(w)
}

func (rep *report) writeSeries(w io.Writer) {
	fmt.Fprintf(w, "## Requests through cycles\n\n")
	fmt.Fprintf(w, "Each row is a fresh system under load (%d clients) for its whole series of cycles, back to back. Failed requests are counted, never retried; \"on reused\" counts those sent on a keep-alive connection that had already served a request. Latency is of the successful requests over the whole series.", rep.d.clients)
	if slices.Contains(rep.d.systems, "haproxy") {
		fmt.Fprintf(w, " HAProxy has one cycle, the reload: USR2 makes its master re-execute its own binary, so a reload is also its binary upgrade, and it has no rollback of its own.")
	}
	fmt.Fprintf(w, "\n\n")
	rep.writeSeriesRows(w, rep.series)
}

// writeSeriesRows writes the table of requests through cycles of the series in list.
func (rep *report) writeSeriesRows(w io.Writer, list []*seriesResult) {
	fmt.Fprintf(w, "| system | cycle | load | cycles | requests | failed | per cycle |")
	for _, k := range load.Kinds {
		fmt.Fprintf(w, " %s |", k)
	}
	fmt.Fprintf(w, " on reused | latency p50 | p99 | max | cycle p50 | cycle p95 |\n|---|---|---|--:|--:|--:|--:|")
	for range load.Kinds {
		fmt.Fprintf(w, "--:|")
	}
	fmt.Fprintf(w, "--:|--:|--:|--:|--:|--:|\n")
	for _, s := range list {
		fmt.Fprintf(w, "| %s | %s | %s | %d |", s.system, s.kind, s.mode, len(s.cycles))
		if s.load == nil {
			fmt.Fprintf(w, " — | — | — |%s — | — | — | — | — | — |\n", strings.Repeat(" — |", len(load.Kinds)))
			continue
		}
		l := s.load
		perCycle := "—"
		if len(s.cycles) > 0 {
			perCycle = fmt.Sprintf("%.1f", float64(l.FailedTotal())/float64(len(s.cycles)))
		}
		fmt.Fprintf(w, " %d | **%d** | %s |", l.Requests, l.FailedTotal(), perCycle)
		for _, k := range load.Kinds {
			fmt.Fprintf(w, " %d |", l.Failed[k])
		}
		ts := totals(s.cycles)
		fmt.Fprintf(w, " %d | %s | %s | %s | %s | %s |\n", l.Reused,
			ms(l.Latency.Quantile(0.5)), ms(l.Latency.Quantile(0.99)), ms(l.Latency.Max()), ms(ts.pct(50)), ms(ts.pct(95)))
	}
	fmt.Fprintln(w)
}

func (rep *report) writePhases(w io.Writer) {
	fmt.Fprintf(w, "## Cycle phases\n\n")
	fmt.Fprintf(w, "Each phase runs from the end of the one before (the first from the first signal). baton's \"ready\" is its own: every new worker sent READY=1; nginx has no readiness protocol, so its \"up\" is: the new processes exist; HAProxy's master sends READY=1 (sd_notify, -Ws) once it has forked the new worker and can take the next reload. \"failed\" counts the failed requests seen during the phase, over all cycles (the load keeps a sample of up to %d failures).\n\n", load.MaxSamples)
	rep.writePhaseRows(w, rep.series)
}

// writePhaseRows writes the phase table of the series in list.
func (rep *report) writePhaseRows(w io.Writer, list []*seriesResult) {
	fmt.Fprintf(w, "| system | cycle | load | phase | p50 | p95 | max | failed |\n|---|---|---|---|--:|--:|--:|--:|\n")
	for _, s := range list {
		if len(s.cycles) == 0 {
			continue
		}
		for i, name := range s.phases {
			ds := phaseDurations(s.cycles, i)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", s.system, s.kind, s.mode, name, ms(ds.pct(50)), ms(ds.pct(95)), ms(ds.pct(100)), s.failedIn[i])
		}
		ts := totals(s.cycles)
		fmt.Fprintf(w, "| %s | %s | %s | **whole cycle** | %s | %s | %s | %d |\n", s.system, s.kind, s.mode, ms(ts.pct(50)), ms(ts.pct(95)), ms(ts.pct(100)), sum(s.failedIn[:len(s.phases)]))
		fmt.Fprintf(w, "| %s | %s | %s | between cycles | | | | %d |\n", s.system, s.kind, s.mode, s.failedIn[len(s.phases)])
	}
	fmt.Fprintln(w)
}

// writeDetail splits baton's "USR2 → new master ready", where its upgrade spends its time.
func (rep *report) writeDetail(w io.Writer) {
	var rows []*seriesResult
	for _, s := range rep.series {
		if s.system == "baton" && s.kind == "upgrade" && len(s.cycles) > 0 {
			rows = append(rows, s)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### Inside baton's \"USR2 → new master ready\"\n\n")
	fmt.Fprintf(w, "From the time the driver read each log line (the masters and workers write to one pipe the driver reads continuously).\n\n")
	fmt.Fprintf(w, "| load | step | p50 | p95 |\n|---|---|--:|--:|\n")
	for _, s := range rows {
		for i, name := range upgradeDetail {
			ds := detailDurations(s.cycles, i)
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", s.mode, name, ms(ds.pct(50)), ms(ds.pct(95)))
		}
	}
	fmt.Fprintln(w)
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// tputStats is the throughput of one system in one mode over its rounds.
type tputStats struct {
	runs   []float64 // req/s, in round order
	median float64
	cpu    time.Duration // median server CPU per request
	failed int64
	ticks  uint64
	secs   float64
}

func (rep *report) tputBy(sys string, mode load.Mode) tputStats {
	var st tputStats
	for _, t := range rep.tput {
		if t.system != sys || t.mode != mode || t.load == nil {
			continue
		}
		st.runs = append(st.runs, t.throughput())
		st.failed += t.failed()
		st.ticks += t.ticks
		st.secs += t.load.Elapsed.Seconds()
	}
	s := slices.Clone(st.runs)
	slices.Sort(s)
	st.median = median(s)
	var cpu durations
	for _, t := range rep.tput {
		if t.system == sys && t.mode == mode && t.load != nil {
			cpu = append(cpu, t.cpuPerRequest())
		}
	}
	st.cpu = cpu.pct(50)
	return st
}

var tputNames = map[string]string{
	"bare":    "hello alone (no supervisor)",
	"bare-2":  "hello alone, a second copy (A/A control)",
	"baton-1": "baton + 1 hello worker",
	"baton-2": "baton + 2 hello workers",
}

func (rep *report) writeThroughput(w io.Writer) {
	d := rep.d
	fmt.Fprintf(w, "## Throughput: supervised vs bare\n\n")
	fmt.Fprintf(w, "The systems run side by side (started once, idle when not measured); runs of the same load (%d clients, %v each, after %v of warm-up per system) alternate between them, the order reversed every other round, %d rounds. The paired ratio compares each run with the bare worker's run of the same round, which cancels the machine's drift; its range shows the noise. Server CPU per request is the utime+stime of every server process (the worker; baton's master and workers) over the run, per successful request: it hardly depends on what else runs on the machine. baton CPU is its master's alone: the work baton did while its workers served.\n\n",
		d.clients, d.tputDuration, d.tputWarm, d.tputRounds)
	fmt.Fprintf(w, "| load | system | median req/s | runs (req/s, by round) | paired ratio to bare: median | min–max | server CPU per request (median) | failed | baton master CPU |\n|---|---|--:|---|--:|--:|--:|--:|--:|\n")
	for _, mode := range d.modes {
		for _, sys := range tputSystems {
			st := rep.tputBy(sys, mode)
			var runs []string
			for _, r := range st.runs {
				runs = append(runs, fmt.Sprintf("%.0f", r))
			}
			ratio, spread, cpu := "1", "", "—"
			if sys != "bare" {
				rs := pairedRatios(rep.tput, sys, mode)
				if len(rs) > 0 {
					ratio = fmt.Sprintf("%.3f", median(rs))
					spread = fmt.Sprintf("%.2f–%.2f", rs[0], rs[len(rs)-1])
				}
			}
			if strings.HasPrefix(sys, "baton") {
				cpu = fmt.Sprintf("%d ticks in %.0f s", st.ticks, st.secs)
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %.1f µs | %d | %s |\n", mode, tputNames[sys], st.median, strings.Join(runs, ", "), ratio, spread, float64(st.cpu)/float64(time.Microsecond), st.failed, cpu)
		}
	}
	fmt.Fprintln(w)
}

func (rep *report) writeResources(w io.Writer) {
	r := rep.idle
	fmt.Fprintf(w, "## baton master resources\n\n")
	fmt.Fprintf(w, "From /proc/PID/status (VmRSS, VmHWM) and /proc/PID/stat (utime+stime, 1 tick = 10 ms of CPU).\n\n")
	fmt.Fprintf(w, "| what | value |\n|---|--:|\n")
	fmt.Fprintf(w, "| master RSS, idle, %d workers | %.1f MiB (%d KiB) |\n", r.workers, float64(r.rss)/1024, r.rss)
	fmt.Fprintf(w, "| master peak RSS (VmHWM) | %.1f MiB |\n", float64(r.hwm)/1024)
	fmt.Fprintf(w, "| master CPU over %v idle | %d ticks (%.3f%% of one core) |\n", r.window, r.ticks, 100*float64(r.ticks)/clockTicks/r.window.Seconds())
	fmt.Fprintf(w, "| the %d workers' RSS, for scale | %.1f MiB |\n", r.workers, float64(r.workersRSS)/1024)
	for _, s := range rep.series {
		if s.system == "baton" && s.rssStart > 0 {
			fmt.Fprintf(w, "| master RSS before → after %d %s cycles (%s load, %d workers) | %.1f → %.1f MiB |\n", len(s.cycles), s.kind, s.mode, s.workers, float64(s.rssStart)/1024, float64(s.rssEnd)/1024)
		}
	}
	fmt.Fprintln(w)
}

func (rep *report) writeScaling(w io.Writer) {
	fmt.Fprintf(w, "## Cycle time against workers and listeners\n\n")
	fmt.Fprintf(w, "baton with the reference worker, no load, %d upgrade cycles (auto commit, no soak: USR2 → old master gone) then %d reload cycles (HUP → old workers gone) per row. Every worker serves every listener.\n\n", rep.d.scaleCycles, rep.d.scaleCycles)
	fmt.Fprintf(w, "| workers | listeners | upgrade p50 | upgrade p95 | USR2 → new ready p50 | reload p50 | reload p95 | HUP → new ready p50 |\n|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range append(slices.Clone(rep.scaleW), rep.scaleL...) {
		u, rl := totals(p.upgrade), totals(p.reload)
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s |\n", p.workers, p.listeners,
			ms(u.pct(50)), ms(u.pct(95)), ms(phaseDurations(p.upgrade, 0).pct(50)),
			ms(rl.pct(50)), ms(rl.pct(95)), ms(phaseDurations(p.reload, 0).pct(50)))
	}
	fmt.Fprintln(w)
}

func (rep *report) writeGate(w io.Writer) {
	fmt.Fprintf(w, "## Health gate: an upgrade whose new generation fails its probation\n\n")
	fmt.Fprintf(w, "baton with %d reference workers, `upgrade.soak = \"1h\"` (only the failure can end the upgrade), %d keep-alive clients; USR2 to a config whose workers are ready and then fail. Times from the fault (the crash's own log line; for the check, the new workers' `workers ready`) to the new master's `probation-failed` and to the old master's `upgrade rolled back` (the new master gone), as the driver read the lines.\n\n", rep.d.workers, rep.d.clients)
	fmt.Fprintf(w, "| case | detected after | rolled back after | failed requests | reason |\n|---|--:|--:|--:|---|\n")
	for _, g := range rep.gate {
		if g.err != nil {
			fmt.Fprintf(w, "| %s | — | — | %d of %d | error: %v |\n", g.name, g.fails, g.requests, g.err)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d of %d | %s |\n", g.name, ms(g.detect), ms(g.rolled), g.fails, g.requests, g.reason)
	}
	fmt.Fprintln(w)
}

func (rep *report) writeMemory(w io.Writer) {
	fmt.Fprintf(w, "## Memory of a reload: all at once against rolling\n\n")
	fmt.Fprintf(w, "baton with %d workers, each python3's http.server on fd 3 holding %d MiB of written bytes, 8 clients (a new connection per request); one reload or upgrade each. RSS of the masters and every process under them, sampled every 10 ms from HUP or USR2 until the old workers (and the old master) are gone, against the same just before.\n\n", memWorkers, memBallast)
	fmt.Fprintf(w, "| replacement | steady | peak | peak / steady | most workers at once | took | failed requests |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.memory {
		if r.err != nil {
			fmt.Fprintf(w, "| %s | — | — | — | — | — | error: %v |\n", r.name, r.err)
			continue
		}
		fmt.Fprintf(w, "| %s | %d MiB | %d MiB | %.2f | %d | %s | %d of %d |\n", r.name, r.steady>>10, r.peak>>10, ratio(r.peak, r.steady), r.most, ms(r.took), r.fails, r.requests)
	}
	fmt.Fprintln(w)
}

func (rep *report) writeErrors(w io.Writer) {
	var errs []string
	for _, r := range rep.memory {
		if r.err != nil {
			errs = append(errs, fmt.Sprintf("memory %s: %v", r.name, r.err))
		}
	}
	for _, g := range rep.gate {
		if g.err != nil {
			errs = append(errs, fmt.Sprintf("health gate %s: %v", g.name, g.err))
		}
	}
	for _, s := range append(slices.Clone(rep.series), rep.starved...) {
		if s.err != nil {
			errs = append(errs, fmt.Sprintf("%s %s %s: %v", s.label(), s.kind, s.mode, s.err))
		}
		if s.hog != nil && s.hog.err != nil {
			errs = append(errs, fmt.Sprintf("%s %s %s: %v", s.label(), s.kind, s.mode, s.hog.err))
		}
	}
	for _, t := range rep.tput {
		if t.err != nil {
			errs = append(errs, fmt.Sprintf("throughput %s %s: %v", t.system, t.mode, t.err))
		}
	}
	for _, p := range append(slices.Clone(rep.scaleW), rep.scaleL...) {
		if p.err != nil {
			errs = append(errs, fmt.Sprintf("scaling %d workers %d listeners: %v", p.workers, p.listeners, p.err))
		}
	}
	if rep.idle.err != nil {
		errs = append(errs, fmt.Sprintf("resources: %v", rep.idle.err))
	}
	for _, l := range rep.long {
		if l.err != nil {
			errs = append(errs, fmt.Sprintf("long-lived %s: %v", l.name, l.err))
		}
	}
	if sr := rep.systemd; sr != nil {
		if sr.err != nil {
			errs = append(errs, fmt.Sprintf("systemd: %v", sr.err))
		}
		for _, s := range sr.series {
			if s.err != nil {
				errs = append(errs, fmt.Sprintf("systemd %s %s: %v", s.kind, s.mode, s.err))
			}
		}
	}
	if len(errs) == 0 {
		return
	}
	fmt.Fprintf(w, "## Errors\n\nThese parts could not be measured:\n\n")
	for _, e := range errs {
		fmt.Fprintf(w, "```\n%s\n```\n", e)
	}
}
