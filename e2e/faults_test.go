//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Faults of the master's transitions (issue 8), each on real processes. Each failed on
// fe3cc34.

// TestReadyStartedUpgradeCommits: with ready = "started" a new master is ready as soon as
// its workers run, so an upgrade commits instead of timing out and rolling back.
func TestReadyStartedUpgradeCommits(t *testing.T) {
	s := newService(t)
	master := s.run(s.workerConfig("never-ready", 2, `ready = "started"

[upgrade]
timeout = "20s"
soak = "100ms"
`))
	s.signal(master, syscall.SIGUSR2)
	s.waitLog(`msg="upgrade committed; the old master exits"`, 1)
	if n := len(lines(s.log(), `msg="upgrade rolled back`)); n != 0 {
		t.Fatalf("the upgrade rolled back")
	}
	waitFor(t, 10*time.Second, func() bool { return !alive(master) }, "the old master to exit")
}

// TestShellWrappedWorkerStops: a worker that is a shell running the server as its child
// (no exec) stops whole: the stop signal reaches the server too, and nothing is left when
// the master has stopped.
func TestShellWrappedWorkerStops(t *testing.T) {
	s := newService(t)
	cfg := s.workerConfig("never-ready", 2, `ready = "started"`)
	cfg = strings.Replace(cfg, fmt.Sprintf("command = [%q]", bin.self),
		fmt.Sprintf("command = [\"/bin/sh\", \"-c\", %q]", bin.self+"; true"), 1)
	master := s.run(cfg)
	waitFor(t, 10*time.Second, func() bool {
		for _, w := range workersOf(master) {
			if len(childrenOf(w)) == 0 {
				return false
			}
		}
		return len(workersOf(master)) == 2
	}, "each shell to start its server")
	s.signal(master, syscall.SIGQUIT)
	s.waitExit(20 * time.Second) // the reaper exits only when nothing it adopted is left
}

// TestHUPDuringCommit: a HUP to the old master while its workers drain for the commit (what
// the v254 units' `systemctl reload` does) does not cancel the commit.
func TestHUPDuringCommit(t *testing.T) {
	s := newService(t)
	cfg := strings.Replace(s.helloConfig(2, ""), `"-drain", "100ms"`, `"-drain", "2s"`, 1)
	master := s.run(cfg + "\n[upgrade]\nsoak = \"100ms\"\n")
	// Idle keep-alive connections on the old workers keep them draining for the window.
	for range 8 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.signal(master, syscall.SIGUSR2)
	s.waitLog(`msg="committing the upgrade: old workers drain"`, 1)
	s.signal(master, syscall.SIGHUP)
	s.waitLog(`msg="reload refused: the upgrade is being committed`, 1)
	s.waitLog(`msg="upgrade committed; the old master exits"`, 1)
	waitFor(t, 10*time.Second, func() bool { return !alive(master) }, "the old master to exit")
	s.waitGenerations(2)
}

// TestUpgradeAfterWorkingDirRemoved: the directory baton was started from is deleted; an
// upgrade still starts the new binary (it failed with "no such file or directory" for the
// binary, which was there: the working directory was not).
func TestUpgradeAfterWorkingDirRemoved(t *testing.T) {
	s := newService(t)
	s.cwd = t.TempDir()
	cfg := strings.Replace(s.helloConfig(2, "\n[upgrade]\nsoak = \"100ms\"\n"), `pidfile = "baton.pid"`, fmt.Sprintf("pidfile = %q", s.path("baton.pid")), 1)
	s.writeConfig(cfg)
	s.start("run", "-c", s.path("baton.toml"))
	s.waitLog(`msg="workers ready"`, 1)
	master := s.pid("baton.pid")
	if err := os.Remove(s.cwd); err != nil {
		t.Fatal(err)
	}
	s.signal(master, syscall.SIGUSR2)
	s.waitLog(`msg="upgrade committed; the old master exits"`, 1)
	s.waitGenerations(2)
}

// TestWorkerOfDeadMasterGetsStopSignal: a worker whose master died gets its stop_signal
// (it drains), not SIGTERM whatever the config says.
func TestWorkerOfDeadMasterGetsStopSignal(t *testing.T) {
	s := newService(t)
	master := s.run(s.workerConfig("record-stop", 1, `stop_signal = "INT"`))
	w := s.waitWorkers(master, 1)[0]
	s.signal(master, syscall.SIGKILL)
	file := s.path(fmt.Sprintf("stop-%d", w))
	// os.WriteFile creates the file, then writes: wait for the content, not the name.
	var b []byte
	waitFor(t, 10*time.Second, func() bool { b, _ = os.ReadFile(file); return len(b) > 0 }, "worker %d to record its stop signal", w)
	if string(b) != "interrupt" {
		t.Errorf("worker of a dead master got %q, want interrupt (its stop_signal)", b)
	}
}

// TestUpgradeTimeoutLeavesNothing: a new master whose workers never get ready and ignore
// their stop signal is stopped at the upgrade timeout, workers included: only the old
// master and its workers are left.
func TestUpgradeTimeoutLeavesNothing(t *testing.T) {
	s := newService(t)
	master := s.run(s.helloConfig(2, "\n[upgrade]\ntimeout = \"1s\"\n"))
	old := s.waitWorkers(master, 2)
	s.writeConfig(s.workerConfig("stubborn", 2, "\n[upgrade]\ntimeout = \"1s\"\n"))
	stop := s.load(4)
	s.signal(master, syscall.SIGUSR2)
	s.waitLog(`msg="upgrade rolled back`, 1)
	want := append([]int{master}, old...)
	waitFor(t, 20*time.Second, func() bool {
		var left []int
		for _, p := range childrenOf(s.reaper.Process.Pid) {
			if alive(p) {
				left = append(left, p)
			}
		}
		for _, p := range workersOf(master) {
			left = append(left, p)
		}
		slices.Sort(left)
		w := slices.Clone(want)
		slices.Sort(w)
		return slices.Equal(left, w)
	}, "only the old master and its workers %v to be left", want)
	if n, errs := stop(); len(errs) > 0 {
		t.Errorf("%d of %d requests failed: %v", len(errs), n, errs[0])
	}
}
