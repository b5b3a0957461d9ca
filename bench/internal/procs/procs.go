//go:build linux

// Package procs watches processes the benchmark did not necessarily start (masters that
// detached, their workers) through pidfds, so that a signal or a wait can never reach a
// process that reused a pid. Each Proc owns its pidfd until Close.
//
// See pidfd_open(2), pidfd_send_signal(2), proc(5) (/proc/PID/task/TID/children).
package procs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Proc is a process watched through a pidfd.
type Proc struct {
	PID int
	fd  int
}

// ErrGone is returned by Open for a process that no longer exists.
var ErrGone = errors.New("process gone")

// Open takes a pidfd of pid. A zombie can still be opened (and counts as exited).
func Open(pid int) (*Proc, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	return &Proc{PID: pid, fd: fd}, nil
}

// Close releases the pidfd; a nil or closed Proc is fine.
func (p *Proc) Close() {
	if p != nil && p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := unix.PidfdSendSignal(p.fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %v to %d: %w", sig, p.PID, err)
	}
	return nil
}

// Exited waits up to wait for the process to exit (a zombie counts as exited) and reports
// whether it has.
func (p *Proc) Exited(wait time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(wait)
	for {
		ms := int((time.Until(deadline) + time.Millisecond - 1) / time.Millisecond)
		n, err := unix.Poll(fds, max(ms, 0))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, os.NewSyscallError("poll", err)
		}
		return n > 0, nil
	}
}

// Wait waits until the process has exited (a zombie counts as exited) and returns when it
// saw it; after deadline it returns an error wrapping os.ErrDeadlineExceeded.
func (p *Proc) Wait(deadline time.Time) (time.Time, error) {
	for {
		left := time.Until(deadline)
		if left < 0 {
			return time.Time{}, fmt.Errorf("pid %d still running: %w", p.PID, os.ErrDeadlineExceeded)
		}
		done, err := p.Exited(left + time.Millisecond)
		if err != nil {
			return time.Time{}, err
		}
		if done {
			return time.Now(), nil
		}
	}
}

// OpenAll opens every process of pids that still exists; on error none stays open.
func OpenAll(pids []int) ([]*Proc, error) {
	var ps []*Proc
	for _, pid := range pids {
		p, err := Open(pid)
		if errors.Is(err, ErrGone) {
			continue
		}
		if err != nil {
			CloseAll(ps)
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// CloseAll closes every Proc of ps.
func CloseAll(ps []*Proc) {
	for _, p := range ps {
		p.Close()
	}
}

// WaitAll waits for every process of ps to exit and returns when the last one did.
func WaitAll(ps []*Proc, deadline time.Time) (time.Time, error) {
	last := time.Now()
	for _, p := range ps {
		t, err := p.Wait(deadline)
		if err != nil {
			return time.Time{}, err
		}
		if t.After(last) {
			last = t
		}
	}
	return last, nil
}

// Children lists the children of pid, zombies included, from /proc/PID/task/*/children:
// a Go process forks from any of its threads.
func Children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
