//go:build linux

package procs

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// start runs `sleep 60` as a child of the test, reaped by the returned wait.
func start(t *testing.T) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() { cmd.Process.Kill(); cmd.Wait() }
}

func TestSignalWaitExited(t *testing.T) {
	cmd, reap := start(t)
	defer reap()
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if done, err := p.Exited(0); done || err != nil {
		t.Fatalf("Exited(0) of a running process = %v, %v", done, err)
	}
	if _, err := p.Wait(time.Now()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait(now) of a running process: %v, want a deadline error", err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: a zombie counts as exited.
	if _, err := p.Wait(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("Wait after SIGTERM: %v", err)
	}
}

func TestOpenAllSkipsGone(t *testing.T) {
	cmd, reap := start(t)
	reap() // reaped: its pid names nothing now (or, in a rare reuse, another process)
	live, reapLive := start(t)
	defer reapLive()
	ps, err := OpenAll([]int{cmd.Process.Pid, live.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(ps)
	if len(ps) < 1 || ps[len(ps)-1].PID != live.Process.Pid {
		t.Errorf("OpenAll kept %v, want the live process %d last", ps, live.Process.Pid)
	}
	if _, err := Open(cmd.Process.Pid); err != nil && !errors.Is(err, ErrGone) {
		t.Errorf("Open of a reaped pid: %v, want ErrGone", err)
	}
}

func TestChildren(t *testing.T) {
	a, reapA := start(t)
	defer reapA()
	b, reapB := start(t)
	defer reapB()
	got := Children(syscall.Getpid())
	for _, want := range []int{a.Process.Pid, b.Process.Pid} {
		if !slices.Contains(got, want) {
			t.Errorf("Children = %v, want %d among them", got, want)
		}
	}
}
