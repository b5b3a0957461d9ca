//go:build linux

package supervisor

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startInGroup starts sleep in process group pgid (0: a group of its own) and returns it.
func startInGroup(t testing.TB, pgid int) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "60")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	return c
}

// waitZombie waits until pid is a zombie, or fails the test at the deadline.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, alive := procPgrp(pid); !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: not a zombie after 10s", pid)
		}
		time.Sleep(5 * time.Millisecond) // polling /proc: no event to wait on
	}
}

// TestGroupHasOthers: the leader does not count, a live member does, a zombie member does
// not (it is dead whoever reaps it).
func TestGroupHasOthers(t *testing.T) {
	leader := startInGroup(t, 0)
	pgid := leader.Process.Pid
	if groupHasOthers(pgid) {
		t.Fatal("a group of its leader alone: others reported")
	}
	member := startInGroup(t, pgid)
	if !groupHasOthers(pgid) {
		t.Fatal("a live member: none reported")
	}
	startInGroup(t, 0) // another group: never counted
	if err := member.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, member.Process.Pid) // not reaped: a zombie member
	if groupHasOthers(pgid) {
		t.Fatal("a zombie member: reported as lingering")
	}
}

// BenchmarkGroupHasOthers is the cost of one look at a worker's group, paid on the loop at
// every worker exit: with G extra processes on the machine.
func BenchmarkGroupHasOthers(b *testing.B) {
	leader := startInGroup(b, 0)
	for range 100 {
		startInGroup(b, 0)
	}
	pgid := leader.Process.Pid
	for b.Loop() {
		if groupHasOthers(pgid) {
			b.Fatal("others reported")
		}
	}
}

// groupHasOthers reports whether the group pgid has a live member other than its leader.
func groupHasOthers(pgid int) bool {
	g := map[int]bool{pgid: false}
	groupsHaveOthers(g)
	return g[pgid]
}
