//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLogReaderGoesAway is `baton run | tee log` where tee dies (issue 8): baton's stdout
// and stderr are pipes, their reader goes away, and then the service takes requests, a
// reload and an upgrade. Nothing may die of SIGPIPE, no request may fail; the workers, a
// program that keeps SIGPIPE at its default, write a line to each stream per request.
func TestLogReaderGoesAway(t *testing.T) {
	s := newService(t)
	closeReaders := s.pipeOutput()
	s.writeConfig(s.workerConfig("chatty", 2, "[upgrade]\ncommit = \"auto\"\nsoak = \"0s\"\n"))
	s.start()
	for _, f := range s.stdio {
		f.Close() // the reaper holds them now
	}
	s.waitLog(`msg="workers ready"`, 1)
	master := s.pid("baton.pid")
	s.waitGenerations(1)
	s.waitLog(`stdout\| chatty stdout`, 1)
	s.waitLog(`stderr\| chatty stderr`, 1)
	if got := lines(s.log(), "stdout| chatty stderr"); len(got) > 0 {
		t.Errorf("a worker's stderr reached baton's stdout: %q", got[0])
	}
	if got := lines(s.log(), "stderr| chatty stdout"); len(got) > 0 {
		t.Errorf("a worker's stdout reached baton's stderr: %q", got[0])
	}

	closeReaders() // from here on nothing reads baton's stdout or stderr
	stop := s.load(4)
	for range 20 {
		if _, err := s.get(); err != nil {
			t.Fatalf("request after the log reader went away: %v", err)
		}
	}

	old := s.waitWorkers(master, 2)
	s.signal(master, syscall.SIGHUP)
	waitFor(t, 20*time.Second, func() bool {
		ws := workersOf(master)
		return len(ws) == 2 && !slices.Contains(old, ws[0]) && !slices.Contains(old, ws[1])
	}, "the reload to replace the workers of %d", master)
	for range 20 {
		if _, err := s.get(); err != nil {
			t.Fatalf("request after the reload: %v", err)
		}
	}

	s.signal(master, syscall.SIGUSR2)
	var nw int
	waitFor(t, 20*time.Second, func() bool {
		nw = s.pidOf("baton.pid")
		return nw != 0 && nw != master && !alive(master)
	}, "the upgrade to commit and the old master %d to exit", master)
	workers := s.waitWorkers(nw, 2)
	s.waitGenerations(2)

	n, errs := stop()
	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed: %v", len(errs), n, errs[:min(len(errs), 5)])
	}
	if !alive(nw) {
		t.Fatalf("the new master %d died", nw)
	}
	for _, w := range workers {
		if !alive(w) {
			t.Errorf("worker %d died", w)
		}
		if ign, err := sigIgn(w); err != nil || ign&(1<<(syscall.SIGPIPE-1)) != 0 {
			t.Errorf("worker %d: SigIgn %x, %v; SIGPIPE must stay at its default", w, ign, err)
		}
	}
	if got := lines(s.log(), "reaper: reaped", "broken pipe"); len(got) > 0 {
		t.Errorf("a master died of SIGPIPE: %s", got)
	}
	s.onlyGeneration(2, 10)
}

// pipeOutput makes baton's stdout and stderr two pipes (service.stdio, their write ends)
// that the test reads line by line into the service's log as "stdout| …" and "stderr| …".
// closeReaders closes their read ends, as a tee that exits does, and waits until the
// readers have stopped.
func (s *service) pipeOutput() (closeReaders func()) {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	var readers []*os.File
	var wg sync.WaitGroup
	for _, name := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			s.t.Fatal(err)
		}
		readers = append(readers, r)
		s.stdio = append(s.stdio, w)
		wg.Go(func() {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				logf.WriteString(name + "| " + sc.Text() + "\n") // one write: lines stay whole
			}
		})
	}
	closed := false
	closeReaders = func() {
		if closed {
			return
		}
		closed = true
		for _, r := range readers {
			r.Close()
		}
		wg.Wait()
		logf.Close()
	}
	s.t.Cleanup(closeReaders)
	return closeReaders
}

// sigIgn returns the mask of signals pid ignores, from /proc/pid/status.
func sigIgn(pid int) (uint64, error) { return sigMask(pid, "SigIgn") }

// sigMask returns a signal mask of /proc/pid/status: SigIgn, SigCgt (caught), SigBlk.
func sigMask(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
