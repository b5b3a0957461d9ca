//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// stopMaster signals a master to stop and waits for it and its descendants; what is left
// at the deadline gets TERM, then KILL.
func stopMaster(pid int, sig syscall.Signal, deadline time.Time) error {
	tree, _ := procs.OpenAll(append([]int{pid}, descendants(pid)...))
	defer procs.CloseAll(tree)
	if len(tree) == 0 {
		return nil
	}
	if tree[0].PID == pid {
		tree[0].Signal(sig)
	}
	if _, err := procs.WaitAll(tree, deadline); err == nil {
		return nil
	}
	for _, p := range tree {
		p.Signal(syscall.SIGKILL)
	}
	return fmt.Errorf("pid %d did not stop in time after %v; killed", pid, sig)
}

// upgradeDetail names the steps of baton's "USR2 → new master ready", from the new
// master's log lines.
var upgradeDetail = []string{
	"USR2 → new master's first log line (fork+exec, Go runtime start, listeners received)",
	"→ its last worker forked (config, checks, notify socket, pid file, fork+exec per worker)",
	"→ its last worker READY=1 (worker start)",
	"→ old master logs \"new master ready\"",
}

// readyDetail finds in lines (from the USR2 to "new master ready") when the new master nw
// first spoke, forked its last worker, and heard its last READY=1. A step not found takes
// the time of the step before.
func readyDetail(lines []logLine, nw int, start, ready time.Time) []time.Time {
	pid := strconv.Itoa(nw)
	first, forked, readied := time.Time{}, time.Time{}, time.Time{}
	for _, l := range lines {
		if l.fields["pid"] != pid {
			continue
		}
		if first.IsZero() {
			first = l.at
		}
		switch l.fields["msg"] {
		case "worker started":
			forked = l.at
		case "worker ready":
			readied = l.at
		}
	}
	out := []time.Time{first, forked, readied, ready}
	prev := start
	for i := range out {
		if out[i].IsZero() {
			out[i] = prev
		}
		prev = out[i]
	}
	return out
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitPIDFile waits until the pid file at path names pid, and returns when it did.
func waitPIDFile(path string, pid int, deadline time.Time) (time.Time, error) {
	for {
		got, err := readPIDFile(path)
		if err == nil && got == pid {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s names %d (%v), want %d: %w", path, got, err, pid, os.ErrDeadlineExceeded)
		}
		time.Sleep(time.Millisecond) // polling a file
	}
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
