//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// cycle is one upgrade, reload or rollback: when it started (the first signal) and when
// each of its phases ended, in the order of its kind's phase names.
type cycle struct {
	start time.Time
	ends  []time.Time
	// detail splits the first phase further, when the system says more (baton's upgrade:
	// see upgradeDetail).
	detail []time.Time
}

func (c cycle) end() time.Time { return c.ends[len(c.ends)-1] }

func (c cycle) total() time.Duration { return c.end().Sub(c.start) }

// phase returns the duration of phase i.
func (c cycle) phase(i int) time.Duration {
	from := c.start
	if i > 0 {
		from = c.ends[i-1]
	}
	return c.ends[i].Sub(from)
}

// phases names the phases of each system's cycles.
var phases = map[string]map[string][]string{
	"baton": {
		"upgrade":  {"USR2 → new master ready", "→ old workers drained, commit", "→ old master gone"},
		"reload":   {"HUP → new workers ready", "→ old workers gone"},
		"rollback": {"USR2 → new master ready", "WINCH old → old workers gone", "HUP old → old workers ready", "QUIT new → new master gone, old in charge"},
	},
	"nginx": {
		"upgrade":  {"USR2 → new master and workers up", "WINCH old → old workers gone", "QUIT old → old master gone"},
		"reload":   {"HUP → new workers up", "→ old workers gone"},
		"rollback": {"USR2 → new master and workers up", "WINCH old → old workers gone", "HUP old → old workers up", "QUIT new → new master gone, nginx.pid restored"},
	},
	"haproxy":          haproxyPhases,
	"haproxy-nospread": haproxyPhases,
}

// hasCycle reports whether system has a cycle of this kind (HAProxy has only the reload).
func hasCycle(system, kind string) bool {
	_, ok := phases[system][kind]
	return ok
}

// service is a system under test with cycles: baton, nginx or HAProxy.
type service interface {
	addr() string
	mainPID() int
	cycle(kind string) (cycle, error)
	stop() error
	logTail() string
}

// seriesResult is one system × cycle kind × load mode.
type seriesResult struct {
	system, kind string
	mode         load.Mode
	workers      int
	phases       []string
	cycles       []cycle
	load         *load.Result
	err          error
	// Failed requests by phase of the cycle they failed in; the last entry counts those
	// that failed between cycles.
	failedIn []int64
	// RSS of the master in charge (baton only), KiB, after start and before stop.
	rssStart, rssEnd int64
	// The CPU hog the series ran beside (starvation mode), nil if none.
	hog *hogUsage
}

// label is the system's name in the failures file: "+hog" under starvation.
func (r *seriesResult) label() string {
	if r.hog != nil {
		return r.system + "+hog"
	}
	return r.system
}

func (d *driver) startService(system, kind string, workers, listeners int) (service, error) {
	switch system {
	case "baton":
		commit := "auto"
		if kind == "rollback" {
			commit = "manual"
		}
		return d.startBaton(batonOpts{workers: workers, listeners: listeners, commit: commit})
	case "nginx":
		return d.startNginx(workers)
	case "haproxy":
		return d.startHAProxy(workers, d.drain)
	case "haproxy-nospread":
		return d.startHAProxy(workers, 0)
	}
	return nil, fmt.Errorf("no system %q", system)
}

// runSeries starts a fresh system, puts it under load, runs n cycles of kind back to back
// (d.gap apart), stops the load and the system. With hogs > 0 (starvation mode) a CPU hog
// of that many busy loops runs from just after the system started until the load
// stopped: the cycles, their drains and the new workers' readiness run under it.
func (d *driver) runSeries(system, kind string, mode load.Mode, n, hogs int) *seriesResult {
	r := &seriesResult{system: system, kind: kind, mode: mode, workers: d.workers, phases: phases[system][kind]}
	svc, err := d.startService(system, kind, d.workers, 1)
	if err != nil {
		r.err = err
		return r
	}
	defer d.stopService(svc, r)
	if hogs > 0 {
		h, err := d.startHog(hogs)
		if err != nil {
			r.err = err
			return r
		}
		// Deferred after stopService, so run before it: the hog is gone before the
		// system stops, and stopService finds nothing of it left.
		defer func() { r.hog = h.stop() }()
	}
	if system == "baton" {
		r.rssStart, _, _ = memory(svc.mainPID())
	}
	ld, err := load.Start(load.Options{Addr: svc.addr(), Clients: d.clients, Mode: mode, Duration: load.MaxDuration, Timeout: d.timeout})
	if err != nil {
		r.err = err
		return r
	}
	if err := warm(ld, d.deadline()); err != nil {
		r.err = err
		r.load = ld.Stop()
		return r
	}
	for i := 0; i < n; i++ {
		c, err := svc.cycle(kind)
		if err != nil {
			r.err = fmt.Errorf("cycle %d: %w\nlast lines of its log:\n%s", i+1, err, svc.logTail())
			break
		}
		r.cycles = append(r.cycles, c)
		time.Sleep(d.gap) // the space between cycles, under load
	}
	r.load = ld.Stop()
	if system == "baton" {
		r.rssEnd, _, _ = memory(svc.mainPID())
	}
	r.failedIn = attribute(r.cycles, len(r.phases), r.load.Samples)
	return r
}

func (d *driver) stopService(svc service, r *seriesResult) {
	if err := svc.stop(); err != nil && r.err == nil {
		r.err = fmt.Errorf("stop: %w", err)
	}
	// Whatever is left of this system (nothing, normally) goes now, before the next.
	if left := descendants(os.Getpid()); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "driver: processes left after stop: %v; ending them\n", left)
		stopAll(5 * time.Second)
	}
}

// warm waits until the load has made a first batch of requests.
func warm(ld *load.Load, deadline time.Time) error {
	for ld.Finished() < 1000 {
		if time.Now().After(deadline) {
			return fmt.Errorf("load: %d requests made before the deadline; is the server up?", ld.Finished())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	return nil
}

// attribute counts failures by the phase of the cycle in which they were seen; the last
// entry is for failures seen between cycles.
func attribute(cs []cycle, nPhases int, fs []load.Failure) []int64 {
	out := make([]int64, nPhases+1)
	for _, f := range fs {
		_, phase := phaseOf(cs, f.At)
		if phase < 0 {
			phase = nPhases
		}
		out[phase]++
	}
	return out
}

// phaseOf returns the cycle (0-based) and phase in which t falls, or -1, -1 between cycles.
func phaseOf(cs []cycle, t time.Time) (int, int) {
	for n, c := range cs {
		if t.Before(c.start) || t.After(c.end()) {
			continue
		}
		for i, e := range c.ends {
			if !t.After(e) {
				return n, i
			}
		}
	}
	return -1, -1
}

// writeFailures appends every failure sample of r to w as CSV.
func writeFailures(w io.Writer, r *seriesResult) {
	if r.load == nil {
		return
	}
	for _, f := range r.load.Samples {
		n, phase := phaseOf(r.cycles, f.At)
		name := "between cycles"
		if phase >= 0 {
			name = r.phases[phase]
		}
		since := ""
		if n >= 0 {
			since = strconv.FormatInt(f.At.Sub(r.cycles[n].start).Microseconds(), 10)
		} else {
			// Between cycles: how long after the end of the cycle before, as "+µs".
			for i := len(r.cycles) - 1; i >= 0; i-- {
				if r.cycles[i].end().Before(f.At) {
					since = "+" + strconv.FormatInt(f.At.Sub(r.cycles[i].end()).Microseconds(), 10)
					n = i
					break
				}
			}
		}
		fmt.Fprintf(w, "%s,%s,%s,%s,%s,%t,%d,%q,%s,%q\n", f.At.UTC().Format("15:04:05.000000"), r.label(), r.kind, r.mode,
			f.Kind, f.Reused, n+1, name, since, f.Err)
	}
}

// durations is a sample of durations with nearest-rank percentiles.
type durations []time.Duration

func (ds durations) pct(p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// detailDurations returns the durations of step i of the cycles' detail.
func detailDurations(cs []cycle, i int) durations {
	var ds durations
	for _, c := range cs {
		if len(c.detail) <= i {
			continue
		}
		from := c.start
		if i > 0 {
			from = c.detail[i-1]
		}
		ds = append(ds, c.detail[i].Sub(from))
	}
	return ds
}

func totals(cs []cycle) durations {
	var ds durations
	for _, c := range cs {
		ds = append(ds, c.total())
	}
	return ds
}

func phaseDurations(cs []cycle, i int) durations {
	var ds durations
	for _, c := range cs {
		ds = append(ds, c.phase(i))
	}
	return ds
}

// freeAddrs returns n loopback addresses with ports free now: the kernel picks them.
func freeAddrs(n int) ([]string, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
