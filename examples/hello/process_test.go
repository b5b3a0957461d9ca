//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envRunMain makes the test binary run hello's main instead of the tests:
// every test runs hello as a real process, started from this binary.
const envRunMain = "HELLO_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Unsetenv(envRunMain)
		main()
		panic("main returned")
	}
	os.Exit(m.Run())
}

// waitLimit bounds every wait for an event. Reaching it is a failure, never
// the expected path: no test sleeps or measures time.
const waitLimit = 30 * time.Second

// passed is a file handed to hello by socket activation.
type passed struct {
	name string
	file *os.File // the test's own copy; hello gets a duplicate
}

// spec says how to start hello.
type spec struct {
	args  []string
	env   []string // added to a clean environment
	files []passed
	// listenPID, if set, is put in LISTEN_PID as is; otherwise LISTEN_PID
	// is hello's own pid, set by `sh -c 'LISTEN_PID=$$ exec …'`, because
	// os/exec cannot set it after fork.
	listenPID string
	// notifyAddr is $NOTIFY_SOCKET: "" for a socket in t.TempDir(), "-" for
	// none, or an address such as "@abstract-name".
	notifyAddr string
}

// process is a running hello.
type process struct {
	cmd    *exec.Cmd
	notify *net.UnixConn // the fake service manager; nil without NOTIFY_SOCKET
	log    *logBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // from Wait, once exited is closed
}

// start starts hello as s says. Cleanup kills it (by pid) if it still runs,
// and logs its stderr if the test failed.
func start(t *testing.T, s spec) *process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{log: newLogBuffer(), exited: make(chan struct{})}
	env := append(cleanEnv(), envRunMain+"=1")
	if os.Getenv("GORACE") == "" {
		// A -race binary sleeps 1s at exit unless told otherwise.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	notifyAddr := s.notifyAddr
	if notifyAddr == "" {
		notifyAddr = filepath.Join(t.TempDir(), "notify")
	}
	if notifyAddr != "-" {
		p.notify = listenNotify(t, notifyAddr)
		env = append(env, "NOTIFY_SOCKET="+notifyAddr)
	}
	var files []*os.File
	var names []string
	for _, f := range s.files {
		files, names = append(files, f.file), append(names, f.name)
	}
	if len(files) > 0 {
		env = append(env, fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	if len(files) > 0 && s.listenPID == "" {
		argv := append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, self}, s.args...)
		p.cmd = exec.Command("/bin/sh", argv...)
	} else {
		p.cmd = exec.Command(self, s.args...)
		if s.listenPID != "" {
			env = append(env, "LISTEN_PID="+s.listenPID)
		}
	}
	p.cmd.Env = append(env, s.env...)
	p.cmd.ExtraFiles = files
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("hello's stderr:\n%s", p.log)
		}
	})
	return p
}

// listenNotify plays the service manager: a datagram socket at addr.
func listenNotify(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// cleanEnv is this environment without what would tell hello about
// listeners, a service manager or baton.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); {
		case strings.HasPrefix(name, "LISTEN_"), name == "NOTIFY_SOCKET", strings.HasPrefix(name, "BATON_"):
		default:
			env = append(env, kv)
		}
	}
	return env
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// expectNotify fails unless the next datagram hello sends is want.
func (p *process) expectNotify(t *testing.T, want string) {
	t.Helper()
	buf := make([]byte, 4096)
	p.notify.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := p.notify.Read(buf)
	if err != nil {
		t.Fatalf("waiting for %q on NOTIFY_SOCKET: %v", want, err)
	}
	if got := string(buf[:n]); got != want {
		t.Fatalf("notify: got %q, want %q", got, want)
	}
}

// expectNoNotify fails if a datagram is queued. Call it after hello exited:
// whatever it sent is queued by then.
func (p *process) expectNoNotify(t *testing.T) {
	t.Helper()
	buf := make([]byte, 4096)
	p.notify.SetReadDeadline(time.Now())
	if n, err := p.notify.Read(buf); err == nil {
		t.Errorf("notify: got %q, want nothing", buf[:n])
	}
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for hello to exit and returns its exit status. It fails if
// hello was killed by a signal.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitLimit):
		t.Fatalf("hello (pid %d) did not exit within %v", p.pid(), waitLimit)
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("hello was killed by %v", ws.Signal())
	}
	return p.cmd.ProcessState.ExitCode()
}

// logBuffer collects hello's stderr and lets a test wait for a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // cap 1: poked on every Write
}

func newLogBuffer() *logBuffer { return &logBuffer{written: make(chan struct{}, 1)} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.written <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete lines that contain all of subs.
func (b *logBuffer) lines(subs ...string) []string {
	var found []string
	text := b.String()
	text = text[:strings.LastIndexByte(text, '\n')+1]
	for line := range strings.Lines(text) {
		if containsAll(line, subs) {
			found = append(found, strings.TrimSuffix(line, "\n"))
		}
	}
	return found
}

// waitLines waits until at least n lines contain all of subs and returns them.
func (b *logBuffer) waitLines(t *testing.T, n int, subs ...string) []string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if found := b.lines(subs...); len(found) >= n {
			return found
		}
		select {
		case <-b.written:
		case <-deadline:
			t.Fatalf("no %d log lines with %q within %v", n, subs, waitLimit)
		}
	}
}

// waitLog waits until hello logs a line that contains all of subs and
// returns it. It fails if hello exits first.
func (p *process) waitLog(t *testing.T, subs ...string) string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if found := p.log.lines(subs...); len(found) > 0 {
			return found[0]
		}
		select {
		case <-p.log.written:
		case <-p.exited:
			// Wait has copied all of stderr: the log is complete.
			if found := p.log.lines(subs...); len(found) > 0 {
				return found[0]
			}
			t.Fatalf("hello exited (%v) without logging %q", p.cmd.ProcessState, subs)
		case <-deadline:
			t.Fatalf("no log line with %q within %v", subs, waitLimit)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// logValue returns the value of key in a slog text line.
func logValue(line, key string) string {
	_, v, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return strings.Trim(v, `"`)
}

// logErr returns the err attribute of a slog text line, unquoted. It must
// be the line's last attribute.
func logErr(line string) string {
	_, v, _ := strings.Cut(line, " err=")
	if u, err := strconv.Unquote(v); err == nil {
		return u
	}
	return v
}
