//go:build linux

// Package e2e drives the baton binary as an operator does: real processes, real signals,
// real sockets on loopback. Each test runs baton under a reaper (this test binary,
// re-executed as a child subreaper) that plays the part of systemd or a shell: it is the
// parent of every master, adopts every orphan, and exits only when nothing it started is
// left, which is how the tests prove that no process outlives a stop.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var bin struct {
	dir    string
	baton  string // version v1
	baton2 string // version v2: the "new binary" of an upgrade
	hello  string
	reach  string // labtest/internal/reach: another user trying the master's sockets
	self   string // this test binary, for the helpers
}

func TestMain(m *testing.M) {
	switch os.Getenv("BATON_E2E_HELPER") {
	case "reaper":
		reaperMain()
		return
	case "worker":
		testWorkerMain()
		return
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "baton-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // workers running as another user exec from here
	bin.dir = dir
	bin.baton = filepath.Join(dir, "baton-v1")
	bin.baton2 = filepath.Join(dir, "baton-v2")
	bin.hello = filepath.Join(dir, "hello")
	bin.reach = filepath.Join(dir, "reach")
	bin.self, _ = os.Executable()
	for _, b := range []struct{ out, pkg, ldflags string }{
		{bin.baton, "../cmd/baton", "-X main.version=v1"},
		{bin.baton2, "../cmd/baton", "-X main.version=v2"},
		{bin.hello, "../examples/hello", ""},
		{bin.reach, "../labtest/internal/reach", ""},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, "-ldflags", b.ldflags, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as shipped
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", b.pkg, err)
			return 1
		}
	}
	return m.Run()
}

// reaperMain is the stand-in for systemd: a child subreaper that starts baton (its
// arguments) and reaps everything until nothing is left. SIGTERM makes it SIGKILL every
// child it has, by pid, then go on reaping.
func reaperMain() {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "reaper:", err)
		os.Exit(1)
	}
	// Nothing but the standard streams reaches baton, as under systemd: whatever the shell
	// that ran `go test` left open is not the master's.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		for _, pid := range childrenOf(os.Getpid()) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for {
			time.Sleep(200 * time.Millisecond) // repeat for orphans adopted meanwhile
			for _, pid := range childrenOf(os.Getpid()) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if os.Getenv("BATON_E2E_STDIO") != "" {
		// baton's stdout and stderr are fds 3 and 4 (service.stdio); ours stay the log.
		syscall.CloseOnExec(3)
		syscall.CloseOnExec(4)
		cmd.Stdout, cmd.Stderr = os.NewFile(3, "baton-stdout"), os.NewFile(4, "baton-stderr")
	}
	cmd.Env = append(os.Environ(), "BATON_E2E_HELPER=", "BATON_E2E_STDIO=")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "reaper:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "reaper: started %d\n", cmd.Process.Pid)
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "reaper: reaped %d (%s)\n", pid, describe(ws))
	}
	os.Exit(0)
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return "exit " + strconv.Itoa(ws.ExitStatus())
}

// childrenOf lists the pids whose parent is ppid, from /proc.
func childrenOf(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.ppid == ppid {
			out = append(out, pid)
		}
	}
	return out
}

type stat struct {
	state byte
	ppid  int
}

func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	ppid, _ := strconv.Atoi(f[1])
	return stat{state: f[0][0], ppid: ppid}, nil
}

// alive reports whether pid runs; a zombie counts as dead.
func alive(pid int) bool {
	st, err := procStat(pid)
	return err == nil && st.state != 'Z' && st.state != 'X'
}

// service is one baton under test, in its own directory.
type service struct {
	t       *testing.T
	dir     string
	port    int
	addr    string
	logPath string
	reaper  *exec.Cmd
	reaped  chan struct{}
	cwd     string     // where baton starts; "" = dir (then argv[0] is relative to it)
	stdio   []*os.File // if set, baton's stdout and stderr, not the log (output_test.go)
}

// newService prepares a directory with a sbin/baton symlink to a copy of baton v1 in bin/,
// and a free loopback port.
func newService(t *testing.T) *service {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // workers running as another user exec from here
	os.Chmod(filepath.Dir(dir), 0o755)
	s := &service{t: t, dir: dir, port: freePort(t), logPath: filepath.Join(dir, "baton.log")}
	s.addr = fmt.Sprintf("127.0.0.1:%d", s.port)
	for _, d := range []string{"bin", "sbin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.install(bin.baton)
	if err := os.Symlink("../bin/baton", filepath.Join(dir, "sbin", "baton")); err != nil {
		t.Fatal(err)
	}
	return s
}

// install replaces bin/baton with a copy of src, through a rename, as a package manager
// does: the running master keeps its old inode.
func (s *service) install(src string) {
	s.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		s.t.Fatal(err)
	}
	s.installBytes(b, 0o755)
}

func (s *service) installBytes(b []byte, mode os.FileMode) {
	s.t.Helper()
	tmp := filepath.Join(s.dir, "bin", ".baton.new")
	if err := os.WriteFile(tmp, b, mode); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "bin", "baton")); err != nil {
		s.t.Fatal(err)
	}
}

func (s *service) path(name string) string { return filepath.Join(s.dir, name) }

// writeConfig writes baton.toml in the service directory.
func (s *service) writeConfig(body string) {
	s.t.Helper()
	if err := os.WriteFile(s.path("baton.toml"), []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// helloConfig is a config with the reference worker on the service's port.
func (s *service) helloConfig(workers int, extra string) string {
	return fmt.Sprintf(`pidfile = "baton.pid"

[[listen]]
name = "http"
address = "%s"

[worker]
command = [%q, "-drain", "100ms"]
count = %d
stop_timeout = "5s"
start_timeout = "10s"
%s
`, s.addr, bin.hello, workers, extra)
}

// workerConfig is a config whose workers are this test binary in a TESTWORKER mode.
func (s *service) workerConfig(mode string, workers int, extra string) string {
	return fmt.Sprintf(`pidfile = "baton.pid"

[[listen]]
name = "http"
address = "%s"

[worker]
command = [%q]
count = %d
# GODEBUG: keep the test worker's own Go runtime from opening cgroup files for GOMAXPROCS.
env = { BATON_E2E_HELPER = "worker", TESTWORKER = %q, TESTWORKER_DIR = %q, GODEBUG = "containermaxprocs=0,updatemaxprocs=0" }
stop_timeout = "1s"
start_timeout = "10s"
restart_delay = "50ms"
restart_delay_max = "800ms"

%s
`, s.addr, bin.self, workers, mode, s.dir, extra)
}

// start runs "./sbin/baton run -c baton.toml" (a relative argv[0] through a symlink, as
// the nginx bug needs) under the reaper, and waits for every worker to be ready.
func (s *service) start(args ...string) {
	s.t.Helper()
	if len(args) == 0 {
		args = []string{"run", "-c", "baton.toml"}
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	argv0 := "./sbin/baton"
	if s.cwd != "" {
		argv0 = s.path("sbin/baton")
	}
	cmd := exec.Command(bin.self, append([]string{argv0}, args...)...)
	cmd.Dir = s.dir
	if s.cwd != "" {
		cmd.Dir = s.cwd
	}
	// GORACE: under -race this test binary, re-executed as the reaper and as test workers,
	// would sleep a second at every exit.
	cmd.Env = append(os.Environ(), "BATON_E2E_HELPER=reaper", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if s.stdio != nil {
		cmd.ExtraFiles = s.stdio
		cmd.Env = append(cmd.Env, "BATON_E2E_STDIO=1")
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.reaper = cmd
	s.reaped = make(chan struct{})
	go func() { cmd.Wait(); close(s.reaped) }()
	s.t.Cleanup(s.cleanup)
}

func (s *service) cleanup() {
	select {
	case <-s.reaped:
	default:
		s.reaper.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.reaped:
		case <-time.After(15 * time.Second):
			s.reaper.Process.Kill()
			<-s.reaped
		}
	}
	if s.t.Failed() {
		b, _ := os.ReadFile(s.logPath)
		s.t.Logf("baton log:\n%s", b)
	}
}

// waitExit waits for the reaper to exit: baton and everything it started are gone.
func (s *service) waitExit(d time.Duration) {
	s.t.Helper()
	select {
	case <-s.reaped:
	case <-time.After(d):
		s.t.Fatalf("processes still running %s after stop: %v", d, childrenOf(s.reaper.Process.Pid))
	}
}

func (s *service) pid(name string) int {
	s.t.Helper()
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		s.t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		s.t.Fatalf("pid file %s: %q", name, b)
	}
	return pid
}

// run writes config, starts baton and waits until its first workers are ready; it
// returns the master's pid.
func (s *service) run(config string) int {
	s.t.Helper()
	s.writeConfig(config)
	s.start()
	s.waitLog(`msg="workers ready"`, 1)
	return s.pid("baton.pid")
}

// upgrade sends USR2 to old and waits for the nth new master of the test to be ready; it
// returns the new master's pid.
func (s *service) upgrade(old, nth int) int {
	s.t.Helper()
	s.signal(old, syscall.SIGUSR2)
	s.waitLog(`msg="new master ready"`, nth)
	return s.pid("baton.pid")
}

// winch sends WINCH to master and waits until its workers have exited.
func (s *service) winch(master int) {
	s.t.Helper()
	s.signal(master, syscall.SIGWINCH)
	waitFor(s.t, 20*time.Second, func() bool { return len(workersOf(master)) == 0 }, "the workers of %d to exit", master)
}

// pidOf returns the pid in a pid file, or 0 if there is none.
func (s *service) pidOf(name string) int {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (s *service) signal(pid int, sig syscall.Signal) {
	s.t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		s.t.Fatalf("kill -%v %d: %v", sig, pid, err)
	}
}

func (s *service) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// waitLog waits until the log matches re at least n times, and returns the matches.
func (s *service) waitLog(re string, n int) []string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	var got []string
	waitFor(s.t, 20*time.Second, func() bool {
		got = rx.FindAllString(s.log(), -1)
		return len(got) >= n
	}, "log to match %q %d times", re, n)
	return got
}

// workersOf lists the live worker processes of a master.
func workersOf(master int) []int {
	var ws []int
	for _, pid := range childrenOf(master) {
		if alive(pid) {
			ws = append(ws, pid)
		}
	}
	return ws
}

// waitWorkers waits until master has n live workers that all answer as generation gen.
func (s *service) waitWorkers(master, n int) []int {
	s.t.Helper()
	var ws []int
	waitFor(s.t, 20*time.Second, func() bool {
		ws = workersOf(master)
		return len(ws) == n
	}, "master %d to have %d workers", master, n)
	return ws
}

type answer struct {
	pid, gen, worker int
}

var answerRE = regexp.MustCompile(`pid=(\d+) generation=(\d+) worker=(\d+)`)

// get makes one request on a new connection.
func (s *service) get() (answer, error) {
	c := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	resp, err := c.Get("http://" + s.addr + "/")
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != 200 {
		return answer{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	m := answerRE.FindStringSubmatch(string(b))
	if m == nil {
		return answer{}, fmt.Errorf("unexpected body %q", b)
	}
	a := answer{}
	a.pid, _ = strconv.Atoi(m[1])
	a.gen, _ = strconv.Atoi(m[2])
	a.worker, _ = strconv.Atoi(m[3])
	return a, nil
}

// waitGenerations makes requests until every generation in want has answered, and fails
// on a generation not in want or on any failed request.
func (s *service) waitGenerations(want ...int) {
	s.t.Helper()
	seen := map[int]bool{}
	waitFor(s.t, 20*time.Second, func() bool {
		a, err := s.get()
		if err != nil {
			s.t.Fatalf("request failed: %v", err)
		}
		ok := false
		for _, g := range want {
			ok = ok || g == a.gen
		}
		if !ok {
			s.t.Fatalf("generation %d answered; want only %v", a.gen, want)
		}
		seen[a.gen] = true
		return len(seen) == len(want)
	}, "generations %v to answer", want)
}

// onlyGeneration asserts that n requests in a row all come from generation gen.
func (s *service) onlyGeneration(gen, n int) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		a, err := s.get()
		if err != nil {
			s.t.Fatalf("request %d failed: %v", i, err)
		}
		if a.gen != gen {
			s.t.Fatalf("request %d answered by generation %d (pid %d), want %d", i, a.gen, a.pid, gen)
		}
	}
}

// load runs clients making requests on new connections until stop is called, which
// returns how many requests were made and the failures.
func (s *service) load(clients int) (stop func() (int, []error)) {
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		n    int
		errs []error
	}
	results := make(chan result, clients)
	for i := 0; i < clients; i++ {
		go func() {
			var r result
			for ctx.Err() == nil && r.n < 100000 {
				if _, err := s.get(); err != nil {
					r.errs = append(r.errs, err)
				}
				r.n++
			}
			results <- r
		}()
	}
	return func() (int, []error) {
		cancel()
		var total int
		var errs []error
		for i := 0; i < clients; i++ {
			r := <-results
			total += r.n
			errs = append(errs, r.errs...)
		}
		return total, errs
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for "+format, append([]any{d}, args...)...)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition, not synchronisation
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// fdsOf lists the open fds of a process, with what they point to.
func fdsOf(pid int) (map[int]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out[fd] = target
	}
	return out, nil
}

// lines returns the log lines containing every one of subs.
func lines(log string, subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		for _, sub := range subs {
			if !strings.Contains(sc.Text(), sub) {
				continue next
			}
		}
		out = append(out, sc.Text())
	}
	return out
}
