//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// The driver plays the part of systemd or a shell for everything it starts: it is a child
// subreaper, so that a baton master started detached (CLONE_PARENT) and an nginx master
// whose parent exited are its children, and it reaps every child, because this machine's
// PID 1 does not.

// reaper reaps every child of the driver, adopted or not.
type reaper struct {
	kick chan struct{} // a child was started: wait4 has something to wait for
}

func startReaper() (*reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	r := &reaper{kick: make(chan struct{}, 1)}
	go r.loop()
	return r, nil
}

func (r *reaper) loop() {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case err == unix.EINTR:
		case err == unix.ECHILD:
			// No child, so no descendant either: nothing can be adopted until the
			// driver starts a process again.
			<-r.kick
		case err != nil:
			time.Sleep(10 * time.Millisecond) // unexpected; do not spin
		}
	}
}

// start starts cmd in a session of its own, gives up os/exec's handle on it (the reaper
// reaps it) and returns its pid.
//
// Every server runs in a session of its own, as a service manager starts it and as nginx's
// daemon puts itself: with the kernel's autogroup scheduling (sched_autogroup_enabled, on
// here as in Debian's kernels), CPU is shared between sessions first, then between the
// threads of a session. A server left in the driver's session would share one slice with
// the load generator, thread by thread, and be measured under other rules than nginx.
func (r *reaper) start(cmd *exec.Cmd) (int, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return pid, nil
}

// openMaster opens a master and its workers (its children now), for a cycle to watch
// them go; on error nothing stays open.
func openMaster(pid int) (*procs.Proc, []*procs.Proc, error) {
	master, err := procs.Open(pid)
	if err != nil {
		return nil, nil, err
	}
	workers, err := procs.OpenAll(children(pid))
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, workers, nil
}

// children lists the live children of pid (a zombie is not one).
func children(pid int) []int {
	return slices.DeleteFunc(procs.Children(pid), func(c int) bool { return !alive(c) })
}

// descendants lists pid's live descendants, children first.
func descendants(pid int) []int {
	var out []int
	for _, c := range children(pid) {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}

// procStat is what the driver reads from /proc/PID/stat.
type procStat struct {
	state byte
	ticks uint64 // utime + stime, in clock ticks
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return procStat{state: f[0][0], ticks: ut + st}, nil
}

// alive reports whether pid runs; a zombie counts as dead.
func alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state != 'Z' && st.state != 'X'
}

// memory returns VmRSS and VmHWM of pid, in KiB.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, nil
}

// clockTicks is USER_HZ, the unit of utime and stime: 100 on every Linux this runs on.
const clockTicks = 100

// stopAll ends every process the driver started or adopted and their descendants: TERM to
// each child, then, after grace, KILL to whatever of that tree is still alive. Each is
// signalled by pid, through a pidfd.
func stopAll(grace time.Duration) {
	self := os.Getpid()
	tree := descendants(self)
	if len(tree) == 0 {
		return
	}
	ps, _ := procs.OpenAll(tree)
	defer procs.CloseAll(ps)
	for _, p := range ps {
		if slices.Contains(children(self), p.PID) {
			p.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(grace)
	for _, p := range ps {
		if _, err := p.Wait(deadline); err != nil {
			p.Signal(syscall.SIGKILL)
		}
	}
}
