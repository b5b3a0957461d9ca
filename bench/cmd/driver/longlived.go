//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// The long-lived connections section (issue 12, "Measure"): baton with 2 reference workers
// holds many idle keep-alive connections (load.Idle: websocket-like clients that make one
// request and wait, and reconnect at once when the server closes them); one upgrade; how
// fast the clients come back to the new generation (peak reconnects per second) and how
// many requests fail. Four ways to drain:
//
//   - "all at once": stop_spread 0, and hello -close-spread 0: every old worker closes all
//     its idle connections at the end of its -drain window, as before issue 12;
//   - "worker paces": stop_spread 0; hello spreads its closes over the time
//     BATON_STOP_TIMEOUT leaves it (its default under baton);
//   - "master paces": stop_spread set, hello -close-spread 0;
//   - "both": stop_spread set, hello from BATON_STOP_TIMEOUT.

// longRun is one upgrade of the section.
type longRun struct {
	name         string
	stopSpread   time.Duration
	workerPaces  bool
	conns        int
	upgrade      time.Duration // USR2 → old master gone
	back         time.Duration // USR2 → every connection back (reconnected and answered)
	res          *load.IdleResult
	peak, peak10 int // reconnects in the busiest 1 s, and 100 ms
	err          error
}

var longVariants = []struct {
	name          string
	spread, paces bool
}{
	{"all at once", false, false}, {"worker paces", false, true},
	{"master paces", true, false}, {"both", true, true},
}

func (d *driver) longLived() []longRun {
	if err := raiseNofile(uint64(d.llConns) + 1024); err != nil {
		return []longRun{{name: "setup", err: err}}
	}
	var runs []longRun
	for _, v := range longVariants {
		r := longRun{name: v.name, workerPaces: v.paces, conns: d.llConns}
		if v.spread {
			r.stopSpread = d.llSpread
		}
		r.err = d.longUpgrade(&r)
		d.progress("long-lived %s: upgrade %v, back %v, peak %d/s (%d in 100 ms), failed %v %s",
			r.name, ms(r.upgrade), ms(r.back), r.peak, r.peak10, failedOf(r.res), errText(r.err))
		runs = append(runs, r)
	}
	return runs
}

func failedOf(r *load.IdleResult) any {
	if r == nil {
		return "-"
	}
	return r.FailedTotal()
}

// longConfig is batonConfig with the section's stop_timeout and stop_spread, and hello
// told not to pace (-close-spread 0) unless it should.
func (d *driver) longConfig(pidfile, addr string, r *longRun) string {
	c := batonConfig(pidfile, d.hello, d.drain.String(), []string{addr}, 2, "auto", "", d.workerProcs)
	c = strings.Replace(c, `stop_timeout = "30s"`, fmt.Sprintf("stop_timeout = %q\nstop_spread = %q", d.llStopTimeout.String(), r.stopSpread.String()), 1)
	if !r.workerPaces {
		c = strings.Replace(c, `"-names", "*"]`, `"-names", "*", "-close-spread", "0s"]`, 1)
	}
	return c
}

func (d *driver) longUpgrade(r *longRun) error {
	b, err := d.startBaton(batonOpts{workers: 2, listeners: 1, commit: "auto", conf: func(pidfile string, addrs []string) string {
		return d.longConfig(pidfile, addrs[0], r)
	}})
	if err != nil {
		return err
	}
	defer b.stop()
	l, err := load.StartIdle(load.IdleOptions{Addr: b.addr(), Conns: r.conns, Timeout: d.timeout, Ping: d.llPing})
	if err != nil {
		return err
	}
	defer func() {
		if r.res == nil {
			r.res = l.Stop()
		}
	}()
	if err := waitUntil(d.deadline(), func() bool { return l.Open() == r.conns }); err != nil {
		return fmt.Errorf("%d of %d connections open: %w", l.Open(), r.conns, err)
	}
	start := time.Now()
	c, err := b.upgrade()
	if err != nil {
		return fmt.Errorf("upgrade: %w\n%s", err, b.logTail())
	}
	r.upgrade = c.total()
	if err := waitUntil(d.deadline(), func() bool { return l.Reconnected() >= r.conns && l.Open() == r.conns }); err != nil {
		return fmt.Errorf("%d reconnects, %d of %d open: %w", l.Reconnected(), l.Open(), r.conns, err)
	}
	r.back = time.Since(start)
	r.res = l.Stop()
	r.peak, _ = r.res.Peak(time.Second)
	r.peak10, _ = r.res.Peak(100 * time.Millisecond)
	return nil
}

// waitUntil polls cond until it holds or deadline passes.
func waitUntil(deadline time.Time, cond func() bool) error {
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within the step timeout")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	return nil
}

// raiseNofile makes sure this process, and so baton and its workers (baton hands its
// workers the limit it was started with), may open n files: the soft RLIMIT_NOFILE up
// to the hard one. Setrlimit also keeps Go from restoring the old soft limit in children.
func raiseNofile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Max < n {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d < %d: raise it (ulimit -Hn, LimitNOFILE=) or use fewer -ll-conns", lim.Max, n)
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func (rep *report) writeLongLived(w io.Writer) {
	d := rep.d
	fmt.Fprintf(w, "## Long-lived connections\n\n")
	fmt.Fprintf(w, "baton with 2 reference workers (`hello -drain %v`), stop_timeout %v, holding %d idle keep-alive connections (bench/load Idle: each makes one request and waits; when the server closes it, the client reconnects at once and makes one request). One upgrade (auto commit, no soak) per row. *peak* is the most reconnects in any 1 s (and 100 ms) window; *back* is USR2 → every connection reconnected and answered. hello paces when it closes its idle connections one at a time over what BATON_STOP_TIMEOUT leaves it (here %v: `-close-spread` %v); stop_spread %v paces the master's stop signals. Pings: %s.\n\n",
		d.drain, d.llStopTimeout, d.llConns, d.llStopTimeout, helloSpread(d), d.llSpread, pings(d.llPing))
	fmt.Fprintf(w, "| drain | stop_spread | hello paces | upgrade | back | reconnects | requests | peak / 1 s | peak / 100 ms | failed requests (refused, reset, EOF, timeout, non-2xx, other) |\n|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.long {
		if r.err != nil {
			fmt.Fprintf(w, "| %s | %v | %v | error | | | | | | |\n", r.name, r.stopSpread, r.workerPaces)
			continue
		}
		fmt.Fprintf(w, "| %s | %v | %v | %s | %s | %d | %d | %d | %d | %d %v |\n", r.name, r.stopSpread, r.workerPaces,
			ms(r.upgrade), ms(r.back), len(r.res.Reconnects), r.res.Requests, r.peak, r.peak10, r.res.FailedTotal(), r.res.Failed)
	}
	fmt.Fprintln(w)
}

func pings(d time.Duration) string {
	if d == 0 {
		return "none (an idle client sends nothing until it is closed)"
	}
	return fmt.Sprintf("a request on each connection every %v", d)
}

// helloSpread is the -close-spread hello derives from the section's stop_timeout with the
// driver's -drain (examples/hello/deadline.go: a tenth kept back, shutdown-timeout three
// tenths up to 10 s, the rest).
func helloSpread(d *driver) time.Duration {
	t := d.llStopTimeout
	return max(t-t/10-d.drain-min(10*time.Second, 3*t/10), 0)
}
