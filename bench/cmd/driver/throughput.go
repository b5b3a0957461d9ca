//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// The supervised/bare throughput comparison. This machine's throughput drifts by more
// than the 2% under test from one minute to the next (other work on the host), so the
// systems are measured side by side in time: all of them are started first (an idle one
// costs nothing), then short runs of the same load alternate between them, the order
// reversed every other round, and each baton run is compared with the bare run of the
// same round (a paired ratio).

// tputSystems are the systems measured: the reference worker alone, a second copy of it
// (an A/A control: its ratio to the first shows what the method can resolve on this
// machine), and under baton with 1 worker (the same single process serving, baton beside
// it) and with 2.
var tputSystems = []string{"bare", "bare-2", "baton-1", "baton-2"}

// tputRun is one throughput measurement: a fixed load for a fixed time, no cycles.
type tputRun struct {
	system string // one of tputSystems
	mode   load.Mode
	round  int
	load   *load.Result
	ticks  uint64 // baton master CPU over the run, clock ticks
	// serverTicks is the CPU of every server process (the worker, and baton's master if
	// any) over the run, clock ticks: unlike throughput, CPU per request barely depends
	// on what else the machine is doing.
	serverTicks uint64
	err         error
}

// cpuPerRequest returns the server processes' CPU time per successful request.
func (r tputRun) cpuPerRequest() time.Duration {
	if r.load == nil || r.load.OK == 0 {
		return 0
	}
	return time.Duration(float64(r.serverTicks) * float64(time.Second) / clockTicks / float64(r.load.OK))
}

func (r tputRun) throughput() float64 {
	if r.load == nil {
		return 0
	}
	return r.load.Throughput()
}

func (r tputRun) failed() int64 {
	if r.load == nil {
		return 0
	}
	return r.load.FailedTotal()
}

// tputTarget is one running system of the comparison.
type tputTarget struct {
	addr   string
	master int // baton's master; 0 for bare
	root   int // the process at the top of the server: the bare worker or the master
	stop   func() error
}

// serverTicks sums the CPU of t's processes: its root and the root's children.
func (t tputTarget) serverTicks() uint64 {
	var sum uint64
	for _, pid := range append([]int{t.root}, children(t.root)...) {
		if st, err := readStat(pid); err == nil {
			sum += st.ticks
		}
	}
	return sum
}

func (d *driver) startTputTarget(sys string) (tputTarget, error) {
	if sys == "bare" || sys == "bare-2" {
		addrs, err := freeAddrs(1)
		if err != nil {
			return tputTarget{}, err
		}
		pid, err := d.startBare(addrs[0])
		if err != nil {
			return tputTarget{}, err
		}
		return tputTarget{addr: addrs[0], root: pid, stop: func() error { return stopMaster(pid, syscall.SIGTERM, d.deadline()) }}, nil
	}
	workers := 1
	if sys == "baton-2" {
		workers = 2
	}
	b, err := d.startBaton(batonOpts{workers: workers, listeners: 1, commit: "auto"})
	if err != nil {
		return tputTarget{}, err
	}
	return tputTarget{addr: b.addr(), master: b.pid, root: b.pid, stop: b.stop}, nil
}

// throughput measures every system of tputSystems d.tputRounds times in mode.
func (d *driver) throughput(mode load.Mode) []tputRun {
	targets := map[string]tputTarget{}
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, sys := range tputSystems {
		t, err := d.startTputTarget(sys)
		if err != nil {
			return []tputRun{{system: sys, mode: mode, err: err}}
		}
		targets[sys] = t
		// Warm up (the worker's heap, the scheduler) before measuring.
		if _, err := d.loadRun(t.addr, mode, d.tputWarm); err != nil {
			return []tputRun{{system: sys, mode: mode, err: err}}
		}
	}
	var runs []tputRun
	for round := 1; round <= d.tputRounds; round++ {
		order := slices.Clone(tputSystems)
		if round%2 == 0 {
			slices.Reverse(order) // no system always runs right after the same one
		}
		for _, sys := range order {
			t := targets[sys]
			r := tputRun{system: sys, mode: mode, round: round}
			var before procStat
			if t.master != 0 {
				before, _ = readStat(t.master)
			}
			serverBefore := t.serverTicks()
			r.load, r.err = d.loadRun(t.addr, mode, d.tputDuration)
			r.serverTicks = t.serverTicks() - serverBefore
			if t.master != 0 {
				after, _ := readStat(t.master)
				r.ticks = after.ticks - before.ticks
			}
			d.progress("throughput %s %s round %d: %.0f req/s, %.1f µs CPU/request, %d failed %v", sys, mode, round, r.throughput(), float64(r.cpuPerRequest())/1e3, r.failed(), r.err)
			runs = append(runs, r)
		}
	}
	return runs
}

func (d *driver) loadRun(addr string, mode load.Mode, dur time.Duration) (*load.Result, error) {
	r, err := load.Run(context.Background(), load.Options{Addr: addr, Clients: d.clients, Mode: mode, Duration: dur, Timeout: d.timeout})
	if err == nil && r.FailedTotal() > 0 {
		err = fmt.Errorf("%d requests failed without any cycle", r.FailedTotal())
	}
	return r, err
}

// pairedRatios returns, for each round, sys's throughput over the bare worker's in the
// same round, sorted.
func pairedRatios(runs []tputRun, sys string, mode load.Mode) []float64 {
	bare := map[int]float64{}
	for _, r := range runs {
		if r.system == "bare" && r.mode == mode && r.throughput() > 0 {
			bare[r.round] = r.throughput()
		}
	}
	var out []float64
	for _, r := range runs {
		if b := bare[r.round]; r.system == sys && r.mode == mode && b > 0 {
			out = append(out, r.throughput()/b)
		}
	}
	slices.Sort(out)
	return out
}

// median of sorted values; 0 for none.
func median(xs []float64) float64 {
	n := len(xs)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
