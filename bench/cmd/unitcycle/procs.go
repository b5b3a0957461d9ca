//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// proc is a process watched through a pidfd: a wait cannot see a reused pid.
type proc struct {
	pid int
	fd  int
}

// errGone is returned by openProc for a process that no longer exists.
var errGone = errors.New("process gone")

func openProc(pid int) (*proc, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return nil, fmt.Errorf("pid %d: %w", pid, errGone)
	}
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	return &proc{pid: pid, fd: fd}, nil
}

func (p *proc) close() {
	if p != nil && p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

// exited waits up to wait for the process to exit (a zombie counts as exited) and reports
// whether it has.
func (p *proc) exited(wait time.Duration) (bool, error) {
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

// openAll opens every process of pids that still exists.
func openAll(pids []int) ([]*proc, error) {
	var ps []*proc
	for _, pid := range pids {
		p, err := openProc(pid)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			closeAll(ps)
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func closeAll(ps []*proc) {
	for _, p := range ps {
		p.close()
	}
}

// children lists the children of pid, from /proc/PID/task/*/children (a Go process forks
// from any of its threads).
func children(pid int) []int {
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
