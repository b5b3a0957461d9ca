//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// Starvation mode (the "starvation" section): the cycle series again, each beside a CPU
// hog, so that the old workers' drains, the new ones' start and readiness, and the
// masters' own work run late, as on a host where another service saturates the CPU.
//
// The hog is n busy loops (sh's `while :; do :; done`, no system call), n = the number of
// CPUs by default (-hogs), at the driver's nice (0 unless the driver was started niced),
// in one session of its own (setsid), as another service would be. With the kernel's
// autogroup scheduling on (see reaper.start), the hog's session gets the share of one
// session beside the server's and the load generator's, whatever n is: about a third of
// the machine on a quiet host, less on a busy one; the report gives the CPU it got.
// -hog-nice sets the nice of the hog's autogroup (/proc/PID/autogroup, see sched(7)), the
// weight of its session against the others': -10 gives it about ten times the weight of
// a session at 0, enough to starve the servers for real.

// hog is a running CPU hog: a shell, leader of its own session and process group, and its
// busy loops.
type hog struct {
	leader *procs.Proc
	loops  []*procs.Proc
	start  time.Time
	ticks  uint64 // the loops' CPU at start
	nice   string // the nice of its autogroup, as /proc/PID/autogroup says it
}

// hogUsage is what a hog took over its life.
type hogUsage struct {
	loops int
	nice  string
	wall  time.Duration
	cpu   time.Duration // utime+stime of the loops
	err   error         // the hog could not be ended cleanly
}

// share is the hog's CPU as a fraction of the machine's (cpus cores over its wall time).
func (u *hogUsage) share(cpus int) float64 {
	if u == nil || u.wall <= 0 || cpus <= 0 {
		return 0
	}
	return u.cpu.Seconds() / (u.wall.Seconds() * float64(cpus))
}

// hogScript starts $1 busy loops in the background and waits for them.
const hogScript = `i=0; while [ "$i" -lt "$1" ]; do (while :; do :; done) & i=$((i+1)); done; wait`

// startHog starts a hog of n busy loops and returns once they all run.
func (d *driver) startHog(n int) (*hog, error) {
	cmd := exec.Command("/bin/sh", "-c", hogScript, "hog", strconv.Itoa(n))
	pid, err := d.reaper.start(cmd) // a session of its own
	if err != nil {
		return nil, fmt.Errorf("hog: %w", err)
	}
	leader, err := procs.Open(pid)
	if err != nil {
		return nil, fmt.Errorf("hog: %w", err)
	}
	h := &hog{leader: leader}
	autogroup := fmt.Sprintf("/proc/%d/autogroup", pid)
	if d.hogNice != 0 {
		// The session's autogroup, shared by the loops the shell starts next.
		if err := os.WriteFile(autogroup, []byte(strconv.Itoa(d.hogNice)), 0); err != nil {
			h.stop()
			return nil, fmt.Errorf("hog: autogroup nice %d: %w", d.hogNice, err)
		}
	}
	deadline := d.deadline()
	for {
		if loops := children(pid); len(loops) >= n {
			if h.loops, err = procs.OpenAll(loops); err == nil && len(h.loops) < n {
				err = fmt.Errorf("hog: %d of %d busy loops left", len(h.loops), n)
			}
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("hog: %d busy loops started, want %d: %w", len(children(pid)), n, os.ErrDeadlineExceeded)
			break
		}
		time.Sleep(time.Millisecond) // polling /proc for the shell's children
	}
	if err != nil {
		h.stop()
		return nil, err
	}
	h.start = time.Now()
	h.ticks = h.cpuTicks()
	if b, err := os.ReadFile(autogroup); err == nil {
		h.nice = autogroupNice(string(b))
	}
	return h, nil
}

func (h *hog) cpuTicks() uint64 {
	var t uint64
	for _, p := range h.loops {
		if st, err := readStat(p.PID); err == nil {
			t += st.ticks
		}
	}
	return t
}

// stop ends the hog's processes, each by its pidfd (the loops, then the shell), waits
// until they are gone and returns what the hog took.
func (h *hog) stop() *hogUsage {
	u := &hogUsage{loops: len(h.loops), nice: h.nice}
	if !h.start.IsZero() {
		u.cpu = time.Duration(h.cpuTicks()-h.ticks) * time.Second / clockTicks
		u.wall = time.Since(h.start)
	}
	all := append(h.loops, h.leader)
	for _, p := range all {
		p.Signal(syscall.SIGKILL)
	}
	if _, err := procs.WaitAll(all, time.Now().Add(10*time.Second)); err != nil {
		u.err = fmt.Errorf("hog: %w", err)
	}
	procs.CloseAll(all)
	return u
}

// autogroupNice returns the nice of /proc/PID/autogroup's "/autogroup-42 nice 0", ""
// if it says none (autogroup off: the file does not exist, or another form).
func autogroupNice(s string) string {
	f := strings.Fields(s)
	if len(f) != 3 || !strings.HasPrefix(f[0], "/autogroup-") || f[1] != "nice" {
		return ""
	}
	if _, err := strconv.Atoi(f[2]); err != nil {
		return ""
	}
	return f[2]
}

// starvationSection runs every cycle series again beside a hog.
func (d *driver) starvationSection() []*seriesResult {
	var out []*seriesResult
	for _, sys := range d.systems {
		for _, kind := range d.kinds {
			if !hasCycle(sys, kind) {
				continue
			}
			for _, mode := range d.modes {
				r := d.runSeries(sys, kind, mode, d.cycles, d.hogs)
				d.progress("starved (%d busy loops): %s %s %s: %s; hog %.0f%% of the CPU", d.hogs, sys, kind, mode, r.summary(), 100*r.hog.share(d.cpus()))
				out = append(out, r)
			}
		}
	}
	return out
}

// writeStarvation writes the starvation section: the series under the hog, and each beside
// the same series of the same run without it.
func (rep *report) writeStarvation(w io.Writer) {
	d := rep.d
	fmt.Fprintf(w, "## Under CPU starvation\n\n")
	fmt.Fprintf(w, "The same series again, each beside a CPU hog started after the system and ended after the load: %d busy loops (`while :; do :; done` in sh) at the driver's nice, in a session of their own (setsid), its autogroup at nice %s. With autogroup scheduling the hog's session competes as one session beside the server's and the load generator's, weighted by its autogroup's nice; \"hog CPU\" is what its loops got, as a share of the %d CPUs. Old workers drain, new ones start and get ready, and the masters work, all late.\n\n",
		d.hogs, rep.hogNice(), d.cpus())
	fmt.Fprintf(w, "| system | cycle | load | cycles | requests | failed | cycle p50 | cycle p95 | max | hog CPU | same run without the hog: requests, failed, cycle p50, p95 |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, s := range rep.starved {
		base := "—"
		if b := rep.find(s.system, s.kind, s.mode); b != nil && b.load != nil {
			bt := totals(b.cycles)
			base = fmt.Sprintf("%d, %d, %s, %s", b.load.Requests, b.failed(), ms(bt.pct(50)), ms(bt.pct(95)))
		}
		if s.load == nil {
			fmt.Fprintf(w, "| %s | %s | %s | %d | — | — | — | — | — | — | %s |\n", s.system, s.kind, s.mode, len(s.cycles), base)
			continue
		}
		ts := totals(s.cycles)
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | **%d** | %s | %s | %s | %.0f%% | %s |\n", s.system, s.kind, s.mode, len(s.cycles), s.load.Requests, s.failed(),
			ms(ts.pct(50)), ms(ts.pct(95)), ms(ts.pct(100)), 100*s.hog.share(d.cpus()), base)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Under starvation: requests and phases\n\n")
	rep.writeSeriesRows(w, rep.starved)
	rep.writePhaseRows(w, rep.starved)
}

// hogNice is the autogroup nice of the hogs of the run (the first measured), "?" if none
// was read.
func (rep *report) hogNice() string {
	for _, s := range rep.starved {
		if s.hog != nil && s.hog.nice != "" {
			return s.hog.nice
		}
	}
	return "?"
}
