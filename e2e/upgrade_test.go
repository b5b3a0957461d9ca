//go:build linux

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpgradeAsOperatorTypesIt is nginx's dance: a new binary file at the same path, USR2,
// WINCH to the old master, QUIT to the old master.
func TestUpgradeAsOperatorTypesIt(t *testing.T) {
	s := newService(t)
	old := s.run(s.helloConfig(2, "\n[upgrade]\ncommit = \"manual\"\n"))
	oldWorkers := s.waitWorkers(old, 2)
	s.onlyGeneration(1, 5)

	s.install(bin.baton2)
	s.signal(old, syscall.SIGUSR2)
	s.waitLog(`msg="new master ready"`, 1)
	if got := s.pid("baton.pid.oldbin"); got != old {
		t.Fatalf("baton.pid.oldbin names %d, want the old master %d", got, old)
	}
	nw := s.pid("baton.pid")
	if nw == old {
		t.Fatalf("baton.pid still names the old master %d", old)
	}
	if got := lines(s.log(), "version=v2", fmt.Sprintf("pid=%d", nw)); len(got) == 0 {
		t.Errorf("the new master did not run the replaced binary (no version=v2 line for pid %d)", nw)
	}
	s.waitWorkers(nw, 2)
	s.waitGenerations(1, 2)

	s.winch(old)
	for _, w := range oldWorkers {
		if alive(w) {
			t.Errorf("old worker %d still alive", w)
		}
	}
	if !alive(old) {
		t.Fatal("old master exited on WINCH")
	}
	s.onlyGeneration(2, 10)

	s.signal(old, syscall.SIGQUIT)
	waitFor(t, 20e9, func() bool { return !alive(old) }, "old master to exit")
	if _, err := os.Stat(s.path("baton.pid.oldbin")); !os.IsNotExist(err) {
		t.Errorf("baton.pid.oldbin still there after commit (err %v)", err)
	}
	if got := s.pid("baton.pid"); got != nw {
		t.Errorf("baton.pid names %d, want the new master %d", got, nw)
	}
	s.onlyGeneration(2, 10)
	if !alive(nw) {
		t.Fatal("new master died at commit")
	}
}

// TestRollbackBeforeCommit: USR2; WINCH old; HUP old brings the old workers back with the
// old config although the file changed; QUIT new: new master gone, pid file restored.
func TestRollbackBeforeCommit(t *testing.T) {
	s := newService(t)
	old := s.run(s.helloConfig(2, "\n[upgrade]\ncommit = \"manual\"\n"))
	s.waitWorkers(old, 2)

	nw := s.upgrade(old, 1)
	s.winch(old)

	s.writeConfig(s.helloConfig(3, "\n[upgrade]\ncommit = \"manual\"\n"))
	s.signal(old, syscall.SIGHUP)
	s.waitWorkers(old, 2) // the old config's count, not the file's 3
	s.waitGenerations(1, 2)

	s.signal(nw, syscall.SIGQUIT)
	waitFor(t, 20e9, func() bool { return !alive(nw) }, "new master to exit")
	waitFor(t, 20e9, func() bool { return s.pidOf("baton.pid") == old }, "baton.pid to name the old master again")
	if _, err := os.Stat(s.path("baton.pid.oldbin")); !os.IsNotExist(err) {
		t.Errorf("baton.pid.oldbin still there after rollback")
	}
	s.onlyGeneration(1, 10)
	if n := len(workersOf(old)); n != 2 {
		t.Errorf("old master has %d workers, want 2", n)
	}
}

// TestTermNewMasterRollsBack: TERM to the new master makes it exit fast; the old master,
// whose workers were stopped, starts them again by itself.
func TestTermNewMasterRollsBack(t *testing.T) {
	s := newService(t)
	old := s.run(s.helloConfig(2, "\n[upgrade]\ncommit = \"manual\"\n"))
	nw := s.upgrade(old, 1)
	s.winch(old)

	s.signal(nw, syscall.SIGTERM)
	waitFor(t, 20e9, func() bool { return !alive(nw) }, "new master to exit")
	s.waitLog(`msg="upgrade rolled back`, 1)
	s.waitWorkers(old, 2)
	waitFor(t, 20e9, func() bool { return s.pidOf("baton.pid") == old }, "baton.pid to name the old master")
	s.waitGenerations(1)
	s.onlyGeneration(1, 10)
}

// TestFailedUpgrades: whatever is wrong with the new binary, the old master keeps serving,
// the pid file names it again, and the log says why.
func TestFailedUpgrades(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(s *service)
		why     string // in the log
	}{
		{"missing", func(s *service) { os.Remove(s.path("bin/baton")) }, "no such file or directory"},
		{"not executable", func(s *service) { os.Chmod(s.path("bin/baton"), 0o644) }, "permission denied"},
		{"exits 1", func(s *service) { s.installBytes([]byte("#!/bin/sh\nexit 1\n"), 0o755) }, `msg="upgrade rolled back`},
		{"never ready", func(s *service) { s.installBytes([]byte("#!/bin/sh\nexec sleep 600\n"), 0o755) }, "not ready within 2s"},
		{"workers fail", func(s *service) {
			s.writeConfig(s.workerConfig("crash", 2, "[upgrade]\ntimeout = \"30s\"\n"))
		}, "new master reports failure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t)
			old := s.run(s.helloConfig(2, "\n[upgrade]\ntimeout = \"2s\"\n"))
			workers := s.waitWorkers(old, 2)
			tc.prepare(s)
			s.signal(old, syscall.SIGUSR2)
			s.waitLog(tc.why, 1)
			s.waitLog(`msg="upgrade (failed|rolled back)`, 1)
			waitFor(t, 20e9, func() bool { return s.pidOf("baton.pid") == old }, "baton.pid to name the old master")
			if _, err := os.Stat(s.path("baton.pid.oldbin")); !os.IsNotExist(err) {
				t.Errorf("baton.pid.oldbin left behind")
			}
			if got := workersOf(old); !slices.Equal(sortInts(got), sortInts(workers)) {
				t.Errorf("old workers changed: %v, want %v", got, workers)
			}
			s.onlyGeneration(1, 5)
		})
	}
}

// TestSecondUSR2Refused: one upgrade at a time.
func TestSecondUSR2Refused(t *testing.T) {
	s := newService(t)
	old := s.run(s.helloConfig(1, "\n[upgrade]\ncommit = \"manual\"\n"))
	nw := s.upgrade(old, 1)
	s.signal(old, syscall.SIGUSR2)
	s.waitLog(`msg="USR2 ignored: an upgrade is already in flight"`, 1)
	s.signal(nw, syscall.SIGUSR2)
	s.waitLog(`msg="USR2 ignored: this master's own upgrade is not committed yet"`, 1)
	if n := len(lines(s.log(), `msg="upgrade started"`)); n != 1 {
		t.Errorf("%d upgrades started, want 1", n)
	}
}

func sortInts(s []int) []int { s = slices.Clone(s); slices.Sort(s); return s }

// TestUSR2ToEveryProcess plays `systemctl kill -s USR2 UNIT` without --kill-whom=main:
// USR2 to every process under the service, again and again while new ones appear, as
// systemd does with a cgroup. The upgrade must complete and no process may die of it,
// even those forked in reaction to the signal.
func TestUSR2ToEveryProcess(t *testing.T) {
	s := newService(t)
	old := s.run(s.helloConfig(2, "\n[upgrade]\nsoak = \"0s\"\n"))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.log(), `msg="upgrade committed; the old master exits"`) {
		if time.Now().After(deadline) {
			t.Fatal("the upgrade did not complete")
		}
		for _, pid := range descendants(s.reaper.Process.Pid) {
			syscall.Kill(pid, syscall.SIGUSR2)
		}
	}
	waitFor(t, 20*time.Second, func() bool { return !alive(old) }, "old master to exit")
	if got := append(lines(s.log(), "killed by SIGUSR2"), lines(s.log(), "(signal user defined signal 2)")...); len(got) > 0 {
		t.Errorf("a process died of USR2:\n%s", strings.Join(got, "\n"))
	}
	if n := len(lines(s.log(), `msg="upgrade rolled back`)); n > 0 {
		t.Errorf("%d upgrades rolled back", n)
	}
	// The blast may have reached the new master once it was in charge, and so started
	// a further upgrade: any generation after the first may answer, and must.
	for i := 0; i < 5; i++ {
		a, err := s.get()
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		if a.gen < 2 {
			t.Errorf("generation %d answered after the upgrade", a.gen)
		}
	}
}

// descendants lists every process below pid, quickly (…/task/…/children rather than a
// scan of /proc), so that the loop reaches a process within a fraction of a millisecond of
// its fork, as systemd's reading of cgroup.procs does.
func descendants(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks { // children are per thread: the one that forked
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			c, _ := strconv.Atoi(f)
			out = append(out, c)
			out = append(out, descendants(c)...)
		}
	}
	return out
}
