//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// cycleTimes returns each cycle's time from its start to the end of phase end.
func cycleTimes(cs []cycle, end int) durations {
	var ds durations
	for _, c := range cs {
		if end < len(c.ends) {
			ds = append(ds, c.ends[end].Sub(c.start))
		}
	}
	return ds
}

// labCycleTimes returns the cycle times of a systemd series as its table reports them.
func labCycleTimes(s *seriesResult) durations {
	return cycleTimes(s.cycles, labCycleEnd[s.kind])
}

// standaloneComparable returns, from the same run, the standalone series' time of the
// step comparable with a systemd cycle of kind, and its name: the whole upgrade (USR2 →
// old master gone), and the reload until its new workers are ready.
func (rep *report) standaloneComparable(kind string, mode load.Mode) (durations, bool) {
	s := rep.find("baton", kind, mode)
	if s == nil || len(s.cycles) == 0 {
		return nil, false
	}
	if kind == "reload" {
		return cycleTimes(s.cycles, 0), true
	}
	return totals(s.cycles), true
}

func (rep *report) writeSystemd(w io.Writer) {
	sr := rep.systemd
	d := rep.d
	fmt.Fprintf(w, "## Under systemd\n\n")
	if sr.skipped != "" {
		fmt.Fprintf(w, "Skipped: %s. This section needs root and a working systemd-lab (`-lab`, default `../shared/systemd-lab/lab`); `-sections` without `systemd` leaves it out.\n\n", sr.skipped)
		return
	}
	fmt.Fprintf(w, "baton's units as shipped (`units/baton@.service`, Type=notify, and `units/baton@.socket`), `/usr/bin/baton` replaced by the binary under test, in a systemd-lab container (%s, LAB_ROOT=%s, its own network namespace); a drop-in sets the socket to `ListenStream=%s`; the config is the standalone series' (%d `hello -drain %v` workers, auto commit, no soak), the listener from the socket unit. The load generator (`bench/cmd/load`, %d clients) and the cycles (`bench/cmd/unitcycle`) run inside the container. Each row is the service started fresh (`systemctl start`) under load for its whole series, cycles %v apart.\n\n",
		sr.version, d.labRoot, labAddr, d.workers, d.drain, d.clients, d.gap)
	fmt.Fprintf(w, "- *upgrade* = `systemctl kill -s USR2 %s` (every process of the unit gets USR2) → `MainPID` names the new master (read over D-Bus, as `systemctl show -p MainPID` does, every 2 ms) → the old master gone (pidfd);\n", labUnit)
	fmt.Fprintf(w, "- *reload* = `systemctl reload %s`; the cycle is the command's own duration (ExecReload= is `baton reload --wait`: it returns when the new workers are ready); the old workers' exit after it is a phase of its own.\n\n", labUnit)
	fmt.Fprintf(w, "The section took %v (lab boot %v, power-off %v). The last column is the standalone series of the same run: the whole upgrade, and the reload until the new workers are ready.\n\n",
		sr.took.Round(time.Second), sr.boot.Round(10*time.Millisecond), sr.down.Round(10*time.Millisecond))
	fmt.Fprintf(w, "| cycle | load | cycles | requests | failed |")
	for _, k := range load.Kinds {
		fmt.Fprintf(w, " %s |", k)
	}
	fmt.Fprintf(w, " on reused | latency p50 | p99 | max | cycle p50 | cycle p95 | standalone cycle p50, same run |\n|---|---|--:|--:|--:|%s--:|--:|--:|--:|--:|--:|--:|\n", strings.Repeat("--:|", len(load.Kinds)))
	for _, s := range sr.series {
		fmt.Fprintf(w, "| %s | %s | %d |", s.kind, s.mode, len(s.cycles))
		cmp := "—"
		if ds, ok := rep.standaloneComparable(s.kind, s.mode); ok {
			cmp = ms(ds.pct(50))
		}
		if s.load == nil {
			fmt.Fprintf(w, " — | — |%s — | — | — | — | — | — | %s |\n", strings.Repeat(" — |", len(load.Kinds)), cmp)
			continue
		}
		l := s.load
		fmt.Fprintf(w, " %d | **%d** |", l.Requests, l.FailedTotal())
		for _, k := range load.Kinds {
			fmt.Fprintf(w, " %d |", l.Failed[k])
		}
		ts := labCycleTimes(s)
		fmt.Fprintf(w, " %d | %s | %s | %s | %s | %s | %s |\n", l.Reused,
			ms(l.Latency.Quantile(0.5)), ms(l.Latency.Quantile(0.99)), ms(l.Latency.Max()), ms(ts.pct(50)), ms(ts.pct(95)), cmp)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Phases under systemd\n\n| cycle | load | phase | p50 | p95 | max | failed |\n|---|---|---|--:|--:|--:|--:|\n")
	for _, s := range sr.series {
		if len(s.cycles) == 0 || len(s.failedIn) != len(s.phases)+1 {
			continue
		}
		for i, name := range s.phases {
			ds := phaseDurations(s.cycles, i)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d |\n", s.kind, s.mode, name, ms(ds.pct(50)), ms(ds.pct(95)), ms(ds.pct(100)), s.failedIn[i])
		}
		fmt.Fprintf(w, "| %s | %s | between cycles | | | | %d |\n", s.kind, s.mode, s.failedIn[len(s.phases)])
	}
	fmt.Fprintln(w)
}

// systemdLoss is context for the first target: what baton lost under systemd.
func (rep *report) systemdLoss() (verdict, bool) {
	sr := rep.systemd
	if sr == nil || sr.skipped != "" || len(sr.series) == 0 {
		return verdict{}, false
	}
	var parts []string
	var failed int64
	for _, s := range sr.series {
		failed += s.failed()
		state := ""
		if s.err != nil || s.load == nil {
			state = ", incomplete"
		}
		parts = append(parts, fmt.Sprintf("%s/%s: %d in %d cycles%s", s.kind, s.mode, s.failed(), len(s.cycles), state))
	}
	return verdict{"(context) baton under systemd, `systemctl kill -s USR2` and `systemctl reload`", fmt.Sprintf("%d failed; %s", failed, strings.Join(parts, "; ")), "—"}, true
}
