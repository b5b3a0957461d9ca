//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashRestartBackoff: a crashing worker is restarted with a growing delay, capped.
func TestCrashRestartBackoff(t *testing.T) {
	s := newService(t)
	s.writeConfig(s.workerConfig("crash", 1, ""))
	s.start()
	got := s.waitLog(`msg="worker (failed|crash loop); restarting".*backoff=\S+`, 7)
	re := regexp.MustCompile(`backoff=(\S+)`)
	var delays []time.Duration
	for _, l := range got {
		d, err := time.ParseDuration(re.FindStringSubmatch(l)[1])
		if err != nil {
			t.Fatal(err)
		}
		delays = append(delays, d)
	}
	want := []time.Duration{50, 100, 200, 400, 800, 800, 800}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(delays[:7], want) {
		t.Errorf("restart delays %v, want %v", delays[:7], want)
	}
	if len(lines(s.log(), `msg="worker crash loop; restarting"`)) == 0 {
		t.Error("the crash loop was not reported")
	}
}

// TestStopSignalIgnored: a worker that ignores its stop signal is killed after the stop
// timeout, and the master still exits, leaving nothing behind.
func TestStopSignalIgnored(t *testing.T) {
	s := newService(t)
	master := s.run(s.workerConfig("ignore-term", 2, ""))
	workers := s.waitWorkers(master, 2)
	s.signal(master, syscall.SIGQUIT)
	s.waitLog(`msg="worker did not stop in time; killing it"`, 2)
	s.waitExit(20 * time.Second)
	for _, w := range workers {
		if alive(w) {
			t.Errorf("worker %d survived", w)
		}
	}
	if _, err := os.Stat(s.path("baton.pid")); !os.IsNotExist(err) {
		t.Error("pid file left behind")
	}
}

// TestNoFDLeaks: a worker holds its standard streams and its listeners, nothing else; the
// master's fd count after 50 upgrades is what it was after one; nothing outlives a stop.
func TestNoFDLeaks(t *testing.T) {
	s := newService(t)
	s.writeConfig(s.workerConfig("fds", 2, `[upgrade]
commit = "auto"
soak = "0s"

[[listen]]
name = "admin"
address = "unix:`+s.path("admin.sock")+`"
`))
	s.start()
	s.waitLog(`msg="workers ready"`, 1)
	first := s.pid("baton.pid")
	checkWorkerFDs(t, s, first)

	var counts []int
	master := first
	for i := 1; i <= 50; i++ {
		s.signal(master, syscall.SIGUSR2)
		s.waitLog(`msg="upgrade committed; the old master exits"`, i)
		old := master
		waitFor(t, 20*time.Second, func() bool { return !alive(old) }, "old master %d to exit", old)
		master = s.pid("baton.pid")
		s.waitWorkers(master, 2)
		s.waitLog(fmt.Sprintf(`msg="upgrade committed: this master is in charge".* pid=%d\b`, master), 1)
		fds, err := fdsOf(master)
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(fds))
	}
	if counts[0] != counts[49] {
		t.Errorf("master fd count after 1 upgrade: %d, after 50: %d (%v)", counts[0], counts[49], counts)
	}
	checkWorkerFDs(t, s, master)

	s.signal(master, syscall.SIGQUIT)
	s.waitExit(20 * time.Second)
}

// checkWorkerFDs reads what the fds workers of master wrote at start: 0, 1, 2, then one
// socket per listener.
func checkWorkerFDs(t *testing.T, s *service, master int) {
	t.Helper()
	for _, w := range s.waitWorkers(master, 2) {
		path := filepath.Join(s.dir, "fds-"+strconv.Itoa(w))
		var b []byte
		waitFor(t, 10*time.Second, func() bool {
			var err error
			b, err = os.ReadFile(path)
			return err == nil && len(b) > 0
		}, "worker %d to list its fds", w)
		var fds []int
		listed := strings.Split(strings.TrimSpace(string(b)), "\n")
		// The worker is this test binary, whose Go runtime may open its own poller (an
		// eventpoll and an eventfd, close-on-exec) while writeFDs runs (protobuf, linked
		// through the metrics package, makes it do so): fds numbered after the one
		// writeFDs read /proc through (the first number missing from the list) were opened
		// by the worker itself, not inherited.
		var nums []int
		for _, l := range listed {
			fd, _ := strconv.Atoi(strings.Fields(l)[0])
			nums = append(nums, fd)
		}
		slices.Sort(nums)
		own := 0
		for i, fd := range nums {
			if fd != i && own == 0 {
				own = i
			}
		}
		for _, l := range listed {
			f := strings.Fields(l)
			fd, _ := strconv.Atoi(f[0])
			if own > 2 && fd > own && (f[1] == "anon_inode:[eventpoll]" || f[1] == "anon_inode:[eventfd]") {
				continue
			}
			fds = append(fds, fd)
			if fd > 2 && !strings.HasPrefix(f[1], "socket:") {
				t.Errorf("worker %d fd %d is %s, not a socket", w, fd, f[1])
			}
		}
		slices.Sort(fds)
		if want := []int{0, 1, 2, 3, 4}; !slices.Equal(fds, want) {
			t.Errorf("worker %d has fds %v, want %v:\n%s", w, fds, want, b)
		}
	}
}

func readFile(p string) (string, error) { b, err := os.ReadFile(p); return string(b), err }
func itoa(i int) string                 { return strconv.Itoa(i) }
func equalInts(a, b []int) bool         { return slices.Equal(a, b) }

// TestWorkersRunAsUser: with worker.user set, workers run unprivileged while the master
// stays root, and they still get their sockets.
func TestWorkersRunAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to change user")
	}
	s := newService(t)
	master := s.run(s.helloConfig(2, "user = \"nobody\"\n"))
	for _, w := range s.waitWorkers(master, 2) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^Uid:\s+65534\s+65534\s+65534\s+65534$`).Match(b) {
			t.Errorf("worker %d does not run as nobody:\n%s", w, b)
		}
	}
	s.onlyGeneration(1, 3)
}

// TestStartTimeout: a worker that never says READY=1 is killed after start_timeout and
// counts as a failed start.
func TestStartTimeout(t *testing.T) {
	s := newService(t)
	s.writeConfig(strings.Replace(s.workerConfig("never-ready", 1, ""), `start_timeout = "10s"`, `start_timeout = "300ms"`, 1))
	s.start()
	s.waitLog(`msg="worker not ready in time; killing it"`, 2)
	got := s.waitLog(`msg="worker failed; restarting".*how="\(pid \d+\) not ready within 300ms"`, 2)
	if len(got) < 2 {
		t.Fatalf("start timeouts not counted as failed starts: %v", got)
	}
}

// TestWinchThenHup: WINCH stops the workers and keeps the sockets (connections queue);
// HUP brings workers back, which answer the queued connection.
func TestWinchThenHup(t *testing.T) {
	s := newService(t)
	master := s.run(s.helloConfig(2, ""))
	s.signal(master, syscall.SIGWINCH)
	waitFor(t, 20*time.Second, func() bool { return len(workersOf(master)) == 0 }, "workers to exit")
	if !alive(master) {
		t.Fatal("master exited on WINCH")
	}
	// The listener is still open: a connection is accepted by the kernel into the backlog.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatalf("connect while no worker runs: %v (the listener was closed)", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	s.signal(master, syscall.SIGHUP)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the connection made while no worker ran was not answered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	s.waitWorkers(master, 2)
}

// TestFastStop: TERM stops everything fast; nothing outlives the master.
func TestFastStop(t *testing.T) {
	s := newService(t)
	master := s.run(s.workerConfig("ignore-term", 2, ""))
	s.waitWorkers(master, 2)
	s.signal(master, syscall.SIGTERM)
	s.waitExit(20 * time.Second)
	if n := len(lines(s.log(), `msg="worker did not stop in time; killing it"`, "timeout=1s")); n != 2 {
		t.Errorf("%d workers killed after the fast-stop grace, want 2", n)
	}
}
