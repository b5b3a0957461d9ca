//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// startBare runs the reference worker alone on addr and waits until it accepts.
func (d *driver) startBare(addr string) (int, error) {
	out, err := os.Create(d.work + "/hello-bare.log")
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(d.hello, "-listen", addr, "-drain", d.drain.String())
	cmd.Stdout, cmd.Stderr = out, out
	if d.workerProcs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(d.workerProcs))
	}
	pid, err := d.reaper.start(cmd)
	if err != nil {
		return 0, err
	}
	deadline := d.deadline()
	for !accepts(addr) {
		if time.Now().After(deadline) {
			stopMaster(pid, syscall.SIGKILL, time.Now().Add(5*time.Second))
			return 0, fmt.Errorf("hello -listen %s: not accepting", addr)
		}
		time.Sleep(5 * time.Millisecond) // polling for the port
	}
	return pid, nil
}

// resources is baton's master, idle, with 4 workers: RSS, and CPU over d.idle.
type resources struct {
	workers    int
	rss, hwm   int64 // KiB
	ticks      uint64
	window     time.Duration
	workersRSS int64 // KiB, all workers together, for scale
	err        error
}

func (d *driver) idleResources() resources {
	r := resources{workers: 4, window: d.idle}
	b, err := d.startBaton(batonOpts{workers: 4, listeners: 1, commit: "auto"})
	if err != nil {
		r.err = err
		return r
	}
	before, err := readStat(b.pid)
	if err != nil {
		r.err = err
		b.stop()
		return r
	}
	time.Sleep(d.idle) // the idle window being measured
	after, _ := readStat(b.pid)
	r.ticks = after.ticks - before.ticks
	r.rss, r.hwm, r.err = memory(b.pid)
	for _, w := range children(b.pid) {
		rss, _, _ := memory(w)
		r.workersRSS += rss
	}
	if err := b.stop(); err != nil && r.err == nil {
		r.err = err
	}
	return r
}

// scalePoint is baton's upgrade and reload cycle times, without load, for one size.
type scalePoint struct {
	workers, listeners int
	upgrade, reload    []cycle
	err                error
}

func (d *driver) scale(workers, listeners int) scalePoint {
	p := scalePoint{workers: workers, listeners: listeners}
	b, err := d.startBaton(batonOpts{workers: workers, listeners: listeners, commit: "auto"})
	if err != nil {
		p.err = err
		return p
	}
	defer func() {
		if err := b.stop(); err != nil && p.err == nil {
			p.err = err
		}
	}()
	for _, kind := range []string{"upgrade", "reload"} {
		for i := 0; i < d.scaleCycles; i++ {
			c, err := b.cycle(kind)
			if err != nil {
				p.err = fmt.Errorf("%s cycle %d: %w\n%s", kind, i+1, err, b.logTail())
				return p
			}
			if kind == "upgrade" {
				p.upgrade = append(p.upgrade, c)
			} else {
				p.reload = append(p.reload, c)
			}
			time.Sleep(d.gap) // the space between cycles
		}
	}
	return p
}

// accepts reports whether a TCP connection to addr succeeds now.
func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
