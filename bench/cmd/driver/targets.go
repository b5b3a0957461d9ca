//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// The targets, judged by rules fixed before the first run:
//   - zero failures: every baton series has at least 100 cycles and no failed request;
//   - upgrade p50: baton's whole-cycle p50 at most nginx's, in each load mode;
//   - RSS at most 15 MiB with 4 workers; idle CPU at most 1 tick (the resolution of
//     /proc/PID/stat, 10 ms) over the idle window;
//   - throughput: the median over rounds of baton + 1 worker's throughput over the bare
//     worker's in the same round at least 0.98, in each mode;
//   - scaling: the upgrade p50 at 64 workers under 2 s, and its growth from 1 to 64
//     workers at most 1.5 × the straight line through the 1- and 16-worker points.

const (
	minCycles   = 100
	maxRSSKiB   = 15 * 1024
	maxIdleTick = 1
	minRatio    = 0.98
	maxAt64     = 2 * time.Second
	linearSlack = 1.5
)

type verdict struct {
	target, measured string
	met              string // "yes", "no", or why it could not be judged
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func (rep *report) targets() []verdict {
	var vs []verdict
	if len(rep.series) > 0 {
		vs = append(vs, rep.zeroFailures())
		for _, anchor := range []string{"nginx", "haproxy", "haproxy-nospread"} {
			if v, ok := rep.anchorLoss(anchor); ok {
				vs = append(vs, v)
			}
		}
		vs = append(vs, rep.upgradeVsNginx()...)
	}
	if v, ok := rep.systemdLoss(); ok {
		vs = append(vs, v)
	}
	if rep.idle.window > 0 && rep.idle.err == nil {
		r := rep.idle
		vs = append(vs,
			verdict{"baton master RSS ≤ 15 MiB with 4 workers", fmt.Sprintf("%.1f MiB", float64(r.rss)/1024), yes(r.rss <= maxRSSKiB)},
			verdict{"baton master idle CPU indistinguishable from zero (≤ 1 tick)", fmt.Sprintf("%d ticks in %v", r.ticks, r.window), yes(r.ticks <= maxIdleTick)})
	}
	if len(rep.tput) > 0 {
		for _, mode := range rep.d.modes {
			rs := pairedRatios(rep.tput, "baton-1", mode)
			if len(rs) == 0 {
				continue
			}
			ratio := median(rs)
			measured := fmt.Sprintf("%.3f (rounds: %.2f–%.2f)", ratio, rs[0], rs[len(rs)-1])
			if aa := pairedRatios(rep.tput, "bare-2", mode); len(aa) > 0 {
				measured += fmt.Sprintf("; A/A control, bare vs bare: %.3f (%.2f–%.2f)", median(aa), aa[0], aa[len(aa)-1])
			}
			if b, s := rep.tputBy("bare", mode).cpu, rep.tputBy("baton-1", mode).cpu; b > 0 {
				measured += fmt.Sprintf("; server CPU per request %.1f µs vs bare %.1f µs (%.3f)", float64(s)/1e3, float64(b)/1e3, float64(s)/float64(b))
			}
			vs = append(vs, verdict{fmt.Sprintf("supervised throughput ≥ 0.98 × bare (%s; baton + 1 worker, median paired ratio)", mode),
				measured, yes(ratio >= minRatio)})
		}
	}
	if v, ok := rep.scalingVerdict(); ok {
		vs = append(vs, v...)
	}
	return vs
}

func (rep *report) zeroFailures() verdict {
	var parts []string
	met := "yes"
	var failed int64
	for _, s := range rep.series {
		if s.system != "baton" {
			continue
		}
		failed += s.failed()
		parts = append(parts, fmt.Sprintf("%s/%s: %d in %d cycles", s.kind, s.mode, s.failed(), len(s.cycles)))
		switch {
		case s.err != nil || s.load == nil:
			met = "not judged: a series did not complete"
		case s.failed() > 0:
			if met == "yes" || strings.HasPrefix(met, "not shown") {
				met = "**no**"
			}
		case len(s.cycles) < minCycles && met == "yes":
			met = fmt.Sprintf("not shown: fewer than %d cycles", minCycles)
		}
	}
	return verdict{"0 failed requests (baton), both modes, ≥ 100 cycles of each kind", fmt.Sprintf("%d failed; %s", failed, strings.Join(parts, "; ")), met}
}

// anchorLoss is context for the first target: what an anchor (nginx, haproxy) lost in the
// same run; false if it did not run.
func (rep *report) anchorLoss(system string) (verdict, bool) {
	var parts []string
	for _, s := range rep.series {
		if s.system == system && s.load != nil {
			rate := "none"
			if f := s.failed(); f > 0 && len(s.cycles) > 0 {
				rate = fmt.Sprintf("1 in %.0f, %.1f per cycle", float64(s.load.Requests)/float64(f), float64(f)/float64(len(s.cycles)))
			}
			parts = append(parts, fmt.Sprintf("%s/%s: %d of %d (%s)", s.kind, s.mode, s.failed(), s.load.Requests, rate))
		}
	}
	return verdict{fmt.Sprintf("(context) %s, same run, same load", system), strings.Join(parts, "; "), "—"}, len(parts) > 0
}

func (rep *report) upgradeVsNginx() []verdict {
	var vs []verdict
	for _, mode := range rep.d.modes {
		b, n := rep.find("baton", "upgrade", mode), rep.find("nginx", "upgrade", mode)
		if b == nil || n == nil || len(b.cycles) == 0 || len(n.cycles) == 0 {
			continue
		}
		bp, np := totals(b.cycles).pct(50), totals(n.cycles).pct(50)
		vs = append(vs, verdict{fmt.Sprintf("baton upgrade cycle p50 ≤ nginx's (%s)", mode),
			fmt.Sprintf("baton %s, nginx %s", ms(bp), ms(np)), yes(bp <= np)})
	}
	return vs
}

func (rep *report) find(system, kind string, mode load.Mode) *seriesResult {
	for _, s := range rep.series {
		if s.system == system && s.kind == kind && s.mode == mode {
			return s
		}
	}
	return nil
}

func (rep *report) scalingVerdict() ([]verdict, bool) {
	at := map[int]time.Duration{}
	for _, p := range rep.scaleW {
		if p.err == nil && len(p.upgrade) > 0 {
			at[p.workers] = totals(p.upgrade).pct(50)
		}
	}
	t1, ok1 := at[1]
	t16, ok16 := at[16]
	t64, ok64 := at[64]
	if !ok64 {
		return nil, false
	}
	vs := []verdict{{"upgrade cycle < 2 s at 64 workers", "p50 " + ms(t64), yes(t64 < maxAt64)}}
	if ok1 && ok16 {
		line := time.Duration(float64(t16-t1) * 63 / 15)
		grown := t64 - t1
		vs = append(vs, verdict{"cycle time grows at most linearly with workers (1→64 growth ≤ 1.5 × the line through 1 and 16)",
			fmt.Sprintf("1→64: +%s; line through 1 and 16: +%s", ms(grown), ms(line)), yes(float64(grown) <= linearSlack*float64(line))})
	}
	return vs, true
}

func (rep *report) writeTargets(w io.Writer) {
	vs := rep.targets()
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(w, "## Targets (issue 4)\n\n| target | measured | met |\n|---|---|---|\n")
	for _, v := range vs {
		fmt.Fprintf(w, "| %s | %s | %s |\n", v.target, v.measured, v.met)
	}
	fmt.Fprintln(w)
}
