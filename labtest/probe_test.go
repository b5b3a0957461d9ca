//go:build lab && linux

package labtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The HTTP client runs inside the lab (its network namespace has only its own loopback):
// labtest/internal/probe, built into the scratch directory. These helpers run it.

// probeResult is probe's summary line.
type probeResult struct {
	OK     int            `json:"ok"`
	Failed int            `json:"failed"`
	Errors map[string]int `json:"errors"`
	Bodies map[string]int `json:"bodies"`
}

// body is what the reference worker hello answers: "pid=… generation=… worker=…".
type body struct{ PID, Generation, Worker int }

var bodyRE = regexp.MustCompile(`^pid=(\d+) generation=(\d+) worker=(\d*)$`)

func parseBody(s string) (body, bool) {
	m := bodyRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return body{}, false
	}
	var b body
	b.PID, _ = strconv.Atoi(m[1])
	b.Generation, _ = strconv.Atoi(m[2])
	b.Worker, _ = strconv.Atoi(m[3])
	return b, true
}

// servedBy returns the worker pids that answered, with their counts.
func (r probeResult) servedBy() map[int]int {
	m := map[int]int{}
	for s, n := range r.Bodies {
		if b, ok := parseBody(s); ok {
			m[b.PID] += n
		}
	}
	return m
}

// generations returns the generations that answered, with their counts.
func (r probeResult) generations() map[int]int {
	m := map[int]int{}
	for s, n := range r.Bodies {
		if b, ok := parseBody(s); ok {
			m[b.Generation] += n
		}
	}
	return m
}

// probeArgs are the probe's arguments for a listen address: host:port, or a unix socket path (then
// probe gets -unix).
func probeArgs(addr string) []string {
	if strings.HasPrefix(addr, "/") {
		return []string{"-unix", addr, "http://unix/"}
	}
	return []string{"http://" + addr + "/"}
}

// probe sends n requests to addr, one connection each, and returns the summary.
func probe(t testing.TB, addr string, n int) probeResult {
	t.Helper()
	p := startProbe(t, append([]string{"-n", strconv.Itoa(n)}, probeArgs(addr)...)...)
	return p.wait(t, 60*time.Second)
}

// mustServe probes addr and fails the test unless every request was answered; it
// returns the summary.
func mustServe(t testing.TB, addr string, n int) probeResult {
	t.Helper()
	r := probe(t, addr, n)
	if r.OK != n || r.Failed != 0 {
		t.Fatalf("probe %s: %d of %d answered, %d failed: %v", addr, r.OK, n, r.Failed, r.Errors)
	}
	return r
}

// probeRun is a probe (or flood) running in the background.
type probeRun struct {
	name     string
	stopFile string
	lines    chan string // stdout lines, closed at the end
	seen     []string    // lines waitLine consumed
	done     chan error
	errOut   lockedBuffer // probe's stderr, written by os/exec's copying goroutine
}

// lockedBuffer is a strings.Builder safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var probeSeq atomic.Int64

// stopArg, as an argument of startProbe, stands for the run's own stop file: give
// "-until", stopArg (or -n).
const stopArg = "{stop}"

// startProbe starts probe with args in the background.
func startProbe(t testing.TB, args ...string) *probeRun {
	t.Helper()
	return startProgram(t, "probe", args...)
}

// startProgram starts one of the programs built into lab.Bin (probe, flood) inside the lab
// in the background, with args.
func startProgram(t testing.TB, name string, args ...string) *probeRun {
	t.Helper()
	p := &probeRun{
		name:     name,
		stopFile: filepath.Join(lab.Dir, fmt.Sprintf("probe-stop-%d", probeSeq.Add(1))),
		lines:    make(chan string, 4096),
		done:     make(chan error, 1),
	}
	argv := []string{"exec", filepath.Join(lab.Bin, name)}
	for _, a := range args {
		if a == stopArg {
			a = p.stopFile
		}
		argv = append(argv, a)
	}
	cmd := lab.command(argv...)
	cmd.Stderr = &p.errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		os.WriteFile(p.stopFile, nil, 0o644) // ends a -until probe that a failed test left
	})
	return p
}

// startLoad starts a probe that sends requests to addr with c clients, each request on a
// connection of its own, until stop.
func startLoad(t testing.TB, addr string, c int) *probeRun {
	t.Helper()
	return startProbe(t, append([]string{"-c", strconv.Itoa(c), "-timeout", "30s", "-until", stopArg}, probeArgs(addr)...)...)
}

// waitLine waits for a line of the probe's output that satisfies ok and returns it.
func (p *probeRun) waitLine(t testing.TB, timeout time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, open := <-p.lines:
			if !open {
				t.Fatalf("probe: %s: it ended first; output: %q %s", what, p.seen, p.errOut.String())
			}
			p.seen = append(p.seen, line)
			if ok(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("probe: %s: not after %s; output so far: %q", what, timeout, p.seen)
		}
	}
}

// stop ends a -until probe and returns its summary.
func (p *probeRun) stop(t testing.TB) probeResult {
	t.Helper()
	p.end(t)
	return p.wait(t, 60*time.Second)
}

// end creates the run's stop file: a -until program ends.
func (p *probeRun) end(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(p.stopFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stopNoFailures ends a -until probe, logs its summary as what, and fails the test unless
// it made requests and none failed.
func (p *probeRun) stopNoFailures(t testing.TB, what string) probeResult {
	t.Helper()
	lr := p.stop(t)
	t.Logf("%s: %d ok, %d failed %v", what, lr.OK, lr.Failed, lr.Errors)
	if lr.Failed != 0 || lr.OK == 0 {
		t.Errorf("%s: %d ok, %d failed: %v", what, lr.OK, lr.Failed, lr.Errors)
	}
	return lr
}

// wait waits for the probe to end and returns its summary.
func (p *probeRun) wait(t testing.TB, timeout time.Duration) probeResult {
	t.Helper()
	var r probeResult
	p.summary(t, timeout, &r)
	return r
}

// summary waits for the program to end and decodes its last line, a JSON summary, into v.
func (p *probeRun) summary(t testing.TB, timeout time.Duration, v any) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, open := <-p.lines:
			if open {
				p.seen = append(p.seen, line)
				continue
			}
			if err := <-p.done; err != nil {
				t.Fatalf("%s: %v: %s", p.name, err, p.errOut.String())
			}
			if len(p.seen) == 0 || json.Unmarshal([]byte(p.seen[len(p.seen)-1]), v) != nil {
				t.Fatalf("%s: no summary line in %q (stderr %q)", p.name, p.seen, p.errOut.String())
			}
			return
		case <-deadline:
			t.Fatalf("%s: not done after %s; output so far: %q", p.name, timeout, p.seen)
		}
	}
}
