//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/bench/load"
	"github.com/baton-supervisor/baton/sdnotify"
	"github.com/baton-supervisor/baton/supervisor"
)

// The fault matrix (issue 8, point 4; FAULTS.md lists every case). Each case starts baton
// with the reference worker, puts it under load (loopback clients, a new connection per
// request unless the case says keep-alive), runs its steps, then waits for the service to
// settle and checks, whatever the steps were:
//
//   - the service serves (or, for a case that ends stopped, that nothing of it is left);
//   - failed requests: none, unless the case allows a bound and says why;
//   - no process of a retired generation is left: the reaper's only live child is the
//     master in charge, whose live children are exactly its workers;
//   - the master in charge holds the same kinds of fds as the first master did at start;
//   - baton.pid names the master in charge and no baton.pid.oldbin is left.
//
// `go test ./e2e/` runs the cases marked fast; BATON_FAULTS=all (make faults) runs them all.
// A case that finds a bug of baton names it in knownBug and is skipped, unless
// BATON_FAULTS_KNOWN=1.

// clients is the number of concurrent load clients of every case.
const clients = 4

type loadKind int

const (
	newConn   loadKind = iota // a new connection per request
	keepAlive                 // one keep-alive connection per client
)

// faultCase is one row of the matrix.
type faultCase struct {
	name     string
	kind     string         // FAULTS.md's grouping
	fast     bool           // also in the default `go test ./e2e/`
	conf     conf           // the first master's config
	prepare  func(f *fault) // before the first master starts
	load     loadKind
	steps    func(f *fault)
	end      end
	knownBug string // a bug of baton this case finds: skipped, with this reason
}

// end is what a case expects once it has settled.
type end struct {
	gen     int    // the generation serving at the end; 0: whichever the master in charge runs
	count   int    // its workers; 0: the first config's count
	stopped bool   // the service ends stopped: nothing of it is left
	pidLeft bool   // stopped by kill -9 of its master: nothing could remove baton.pid
	failed  int    // failed requests allowed (connections refused once stopped not counted)
	why     string // why failed is not 0
}

// conf is a config of the matrix: the reference worker on the service's port, a control
// socket, a pid file.
type conf struct {
	mode         string // TESTWORKER mode run in front of the reference worker; "" runs it directly
	slot         int    // the mode applies to this worker slot only; 0: every slot
	gate         string // mode gate: the file in the service directory that opens it
	count        int    // default 2
	shell        bool   // the worker is a shell running a shell running hello (ready = "started")
	ready        string
	stopSignal   string
	stopTimeout  string // default 5s
	startTimeout string // default 10s
	commit       string // upgrade.commit, default auto
	soak         string // upgrade.soak, default 0s
	timeout      string // upgrade.timeout, default 30s
	worker       string // more [worker] lines
	raw          string // the whole file instead of all of the above
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *service) render(c conf) string {
	if c.raw != "" {
		return c.raw
	}
	cmd := []string{bin.hello, "-drain", "100ms"}
	env := ""
	if c.mode != "" {
		cmd = append([]string{bin.self}, cmd...)
		slot := ""
		if c.slot > 0 {
			slot = strconv.Itoa(c.slot)
		}
		env = fmt.Sprintf(`env = { BATON_E2E_HELPER = "worker", TESTWORKER = %q, TESTWORKER_DIR = %q, TESTWORKER_SLOT = %q, TESTWORKER_GATE = %q, GODEBUG = "containermaxprocs=0,updatemaxprocs=0" }`,
			c.mode, s.dir, slot, c.gate)
	}
	if c.shell {
		inner := "LISTEN_PID=$$ exec " + shellQuote(cmd...)
		cmd = []string{"/bin/sh", "-c", "/bin/sh -c " + shellQuote(inner) + "; true"}
		c.ready = or(c.ready, "started")
	}
	count := c.count
	if count == 0 {
		count = 2
	}
	quoted := make([]string, len(cmd))
	for i, a := range cmd {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`pidfile = "baton.pid"
control_socket = "baton.sock"

[[listen]]
name = "http"
address = %q

[worker]
command = [%s]
count = %d
%s
ready = %q
stop_signal = %q
stop_timeout = %q
start_timeout = %q
restart_delay = "50ms"
restart_delay_max = "800ms"
%s

[upgrade]
commit = %q
soak = %q
timeout = %q
`, s.addr, strings.Join(quoted, ", "), count, env, or(c.ready, "notify"), or(c.stopSignal, "TERM"),
		or(c.stopTimeout, "5s"), or(c.startTimeout, "10s"), c.worker, or(c.commit, "auto"), or(c.soak, "0s"), or(c.timeout, "30s"))
}

func shellQuote(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// fault is a case in progress: the service and what the steps need.
type fault struct {
	*service
	c     *faultCase
	first int        // the first master
	ld    *load.Load // nil once stopped

	untouched func() // prepare's victim check, for the steps
}

func TestFaultMatrix(t *testing.T) {
	all := os.Getenv("BATON_FAULTS") == "all"
	seen := map[string]bool{}
	for _, c := range faultCases() {
		if seen[c.name] {
			t.Fatalf("two cases named %s", c.name)
		}
		seen[c.name] = true
		if !all && !c.fast {
			continue
		}
		t.Run(c.name, func(t *testing.T) { runFault(t, &c) })
	}
}

func runFault(t *testing.T, c *faultCase) {
	if c.knownBug != "" && os.Getenv("BATON_FAULTS_KNOWN") == "" {
		t.Skip("known bug: " + c.knownBug + " (BATON_FAULTS_KNOWN=1 runs it)")
	}
	if c.end.failed > 0 && c.end.why == "" {
		t.Fatal("a case that allows failed requests must say why")
	}
	s := newService(t)
	f := &fault{service: s, c: c}
	if c.prepare != nil {
		c.prepare(f)
	}
	f.first = s.run(s.render(c.conf))
	s.waitWorkers(f.first, f.count())
	base := fdKinds(t, f.first)

	mode := load.NewConn
	if c.load == keepAlive {
		mode = load.KeepAlive
	}
	ld, err := load.Start(load.Options{Addr: s.addr, Clients: clients, Mode: mode, Duration: 10 * time.Minute, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.ld = ld
	t.Cleanup(func() { ld.Stop() })
	f.progress() // the steps run under load

	c.steps(f)

	if c.end.stopped {
		s.waitExit(30 * time.Second)
		f.checkFailures(ld.Stop())
		if fi, err := os.Lstat(s.path("baton.pid")); err == nil && fi.Mode().IsRegular() && !c.end.pidLeft {
			t.Errorf("baton.pid left behind by a stopped service")
		}
		return
	}
	master, st := f.settle(base)
	if c.end.gen != 0 && st.Generation != c.end.gen {
		t.Errorf("generation %d in charge (master %d), want %d", st.Generation, master, c.end.gen)
	}
	f.progress() // and it serves, under load, once settled
	f.checkFailures(ld.Stop())
	s.onlyGeneration(st.Generation, 5)
}

// count is the number of workers the master in charge runs at the end.
func (f *fault) count() int {
	switch {
	case f.c.end.count != 0:
		return f.c.end.count
	case f.c.conf.count != 0:
		return f.c.conf.count
	}
	return 2
}

// progress waits until the load has made 50 more requests.
func (f *fault) progress() {
	f.t.Helper()
	n := f.ld.Finished()
	waitFor(f.t, 30*time.Second, func() bool { return f.ld.Finished() >= n+50 }, "the load to make progress")
}

func (f *fault) checkFailures(r *load.Result) {
	t := f.t
	t.Helper()
	failed := r.FailedTotal()
	if f.c.end.stopped {
		failed -= r.Failed[load.Refused] // nothing listens any more
	}
	t.Logf("load: %d requests, %d ok, failed %v (refused, reset, EOF, timeout, non-2xx, other)", r.Requests, r.OK, r.Failed)
	if failed > int64(f.c.end.failed) {
		var ex []string
		for i, s := range r.Samples {
			if i == 5 {
				break
			}
			ex = append(ex, fmt.Sprintf("%s %s: %s", s.At.Format("15:04:05.000"), s.Kind, s.Err))
		}
		t.Errorf("%d of %d requests failed, want at most %d: %s", failed, r.Requests, f.c.end.failed, strings.Join(ex, "; "))
	}
}

// settle waits until the service is quiet and right: the pid file names a live master,
// the reaper's child, which is in charge, serving, with nothing in flight, f.count()
// ready workers and nothing else alive under it or under the reaper, the fds it had at
// start; and no baton.pid.oldbin of baton's. It returns the master and its status.
func (f *fault) settle(base []string) (int, supervisor.Status) {
	t := f.t
	t.Helper()
	var master int
	var st supervisor.Status
	check := func() string {
		master = f.pidOf("baton.pid")
		if master == 0 || !alive(master) {
			return fmt.Sprintf("baton.pid names %d, not a live process", master)
		}
		if fi, err := os.Lstat(f.path("baton.pid.oldbin")); err == nil && fi.Mode().IsRegular() {
			old := f.pidOf("baton.pid.oldbin")
			return fmt.Sprintf("baton.pid.oldbin is there, naming %d (alive: %v)", old, alive(old))
		}
		var others []int
		for _, pid := range childrenOf(f.reaper.Process.Pid) {
			if pid != master && alive(pid) {
				others = append(others, pid)
			}
		}
		if len(others) > 0 {
			return fmt.Sprintf("processes other than the master %d left under the reaper: %v", master, describePids(others))
		}
		if ws := workersOf(master); len(ws) != f.count() {
			return fmt.Sprintf("master %d has %d live children, want %d workers: %v", master, len(ws), f.count(), describePids(ws))
		}
		var err error
		if st, err = f.statusOf(); err != nil {
			return "status: " + err.Error()
		}
		ready := 0
		for _, w := range st.Workers {
			if w.State == "ready" && w.Role == "current" {
				ready++
			}
		}
		switch {
		case st.PID != master || !st.Main || st.State != "serving":
			return fmt.Sprintf("the control socket's master is %d (main %v, %s), want %d in charge and serving", st.PID, st.Main, st.State, master)
		case st.Upgrade != nil || st.Reload != nil:
			return fmt.Sprintf("something in flight: upgrade %+v reload %+v", st.Upgrade, st.Reload)
		case ready != f.count() || len(st.Workers) != f.count():
			return fmt.Sprintf("workers %+v, want %d current and ready", st.Workers, f.count())
		}
		if got := fdKinds(t, master); !slices.Equal(got, base) {
			return fmt.Sprintf("master %d fds %v, want what the first master had at start: %v", master, got, base)
		}
		return ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for why := check(); why != ""; why = check() {
		if time.Now().After(deadline) {
			t.Fatalf("the service did not settle in 30s: %s", why)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition
	}
	return master, st
}

func describePids(pids []int) []string {
	var out []string
	for _, p := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		out = append(out, fmt.Sprintf("%d %q", p, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")))
	}
	return out
}

// fdKinds lists a process's fds as sorted kinds: a socket or pipe without its inode, an
// anon inode by its type, a file by its path.
func fdKinds(t *testing.T, pid int) []string {
	fds, err := fdsOf(pid)
	if err != nil {
		t.Fatalf("fds of %d: %v", pid, err)
	}
	var out []string
	for _, target := range fds {
		if i := strings.Index(target, ":["); i > 0 && !strings.HasPrefix(target, "anon_inode") {
			target = target[:i]
		}
		out = append(out, target)
	}
	slices.Sort(out)
	return out
}

// statusOf asks the control socket, without failing the test.
func (f *fault) statusOf() (supervisor.Status, error) {
	out, code := f.baton("status", "--socket", f.path("baton.sock"), "--json")
	var r supervisor.ControlReply
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status == nil {
		return supervisor.Status{}, fmt.Errorf("exit %d: %q", code, out)
	}
	return *r.Status, nil
}

// write replaces the config file (the next reload, or the next new master, reads it).
func (f *fault) write(c conf) { f.writeConfig(f.render(c)) }

// wait waits for a log line of master pid that matches msg and every one of also
// (regular expressions), and returns it.
func (f *fault) wait(msg string, pid int, also ...string) string {
	f.t.Helper()
	var got string
	waitFor(f.t, 20*time.Second, func() bool {
		ls := f.linesOf(pid, append([]string{msg}, also...)...)
		if len(ls) == 0 {
			return false
		}
		got = ls[0]
		return true
	}, "a log line of pid %d matching %q %q", pid, msg, also)
	return got
}

// linesOf returns the log lines of master pid that match every one of res.
func (f *fault) linesOf(pid int, res ...string) []string {
	rs := []*regexp.Regexp{regexp.MustCompile(`\bpid=` + strconv.Itoa(pid) + `\b`)}
	for _, re := range res {
		rs = append(rs, regexp.MustCompile(re))
	}
	var out []string
	for _, l := range lines(f.log(), "msg=") {
		ok := true
		for _, re := range rs {
			ok = ok && re.MatchString(l)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// lines returns how many log lines of master pid match msg.
func (f *fault) lines(msg string, pid int) int { return len(f.linesOf(pid, msg)) }

var newPidRE = regexp.MustCompile(`\bnew_pid=(\d+)`)

// usr2 sends USR2 to old and returns the new master's pid, once the upgrade has started.
func (f *fault) usr2(old int) int {
	f.t.Helper()
	before := f.lines(`msg="upgrade started"`, old)
	f.signal(old, syscall.SIGUSR2)
	waitFor(f.t, 20*time.Second, func() bool { return f.lines(`msg="upgrade started"`, old) > before }, "the upgrade of %d to start", old)
	return f.newMaster(old)
}

// newMaster returns the new master of the last upgrade old started.
func (f *fault) newMaster(old int) int {
	ls := f.linesOf(old, `msg="upgrade started"`)
	if len(ls) == 0 {
		f.t.Fatalf("%d started no upgrade", old)
	}
	n, _ := strconv.Atoi(newPidRE.FindStringSubmatch(ls[len(ls)-1])[1])
	return n
}

// ready waits until old says its new master nw is ready.
func (f *fault) ready(old, nw int) {
	f.t.Helper()
	f.wait(`msg="new master ready"`, old, `\bnew_pid=`+strconv.Itoa(nw)+`\b`)
}

// gone waits until pid has exited (a zombie counts as gone).
func (f *fault) gone(pid int) {
	f.t.Helper()
	waitFor(f.t, 20*time.Second, func() bool { return !alive(pid) }, "%d to exit", pid)
}

func (f *fault) kill9(pid int) {
	f.t.Helper()
	f.signal(pid, syscall.SIGKILL)
	f.gone(pid)
}

// pause stops pid (SIGSTOP) and waits until it is stopped; resume continues it.
func (f *fault) pause(pid int) {
	f.t.Helper()
	f.signal(pid, syscall.SIGSTOP)
	waitFor(f.t, 20*time.Second, func() bool { st, err := procStat(pid); return err == nil && st.state == 'T' }, "%d to stop", pid)
}

func (f *fault) resume(pid int) {
	f.t.Helper()
	f.signal(pid, syscall.SIGCONT)
	waitFor(f.t, 20*time.Second, func() bool { st, err := procStat(pid); return err != nil || st.state != 'T' }, "%d to continue", pid)
}

// open opens the gate name of workers in mode gate.
func (f *fault) open(name string) {
	f.t.Helper()
	if err := os.WriteFile(f.path(name), nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// pidFiles checks that baton.pid names main and baton.pid.oldbin names old (0: none).
func (f *fault) pidFiles(main, old int) {
	f.t.Helper()
	if got := f.pidOf("baton.pid"); got != main {
		f.t.Errorf("baton.pid names %d, want %d", got, main)
	}
	if got := f.pidOf("baton.pid.oldbin"); got != old {
		f.t.Errorf("baton.pid.oldbin names %d, want %d", got, old)
	}
}

// hold opens a connection that sends nothing and waits until a worker of master has
// accepted it: that worker, once asked to stop, waits for the connection's first request
// (hello's drain) until release closes it. Make it before the workers of another master
// accept on the socket.
func (f *fault) hold(master int) (release func()) {
	f.t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	local := c.LocalAddr().(*net.TCPAddr).Port
	waitFor(f.t, 20*time.Second, func() bool {
		ino := serverSocket(f.port, local)
		if ino == "" || ino == "0" {
			return false // not accepted yet: no inode
		}
		for _, w := range workersOf(master) {
			fds, _ := fdsOf(w)
			for _, target := range fds {
				if target == "socket:["+ino+"]" {
					return true
				}
			}
		}
		return false
	}, "a worker of %d to accept the held connection", master)
	return func() { c.Close() }
}

// serverSocket returns the inode of the server's end of the loopback TCP connection from
// client port to server port, from /proc/net/tcp ("0" until a process accepted it).
func serverSocket(server, client int) string {
	b, _ := os.ReadFile("/proc/net/tcp")
	local := fmt.Sprintf("0100007F:%04X", server)
	remote := fmt.Sprintf("0100007F:%04X", client)
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		if len(fs) > 9 && fs[1] == local && fs[2] == remote {
			return fs[9]
		}
	}
	return ""
}

// workersStarted waits until master has logged n workers started.
func (f *fault) workersStarted(master, n int) {
	f.t.Helper()
	waitFor(f.t, 20*time.Second, func() bool { return f.lines(`msg="worker started"`, master) >= n }, "%d workers of %d to start", n, master)
}

// serving returns how many live workers of master have said (hello's own log line) that
// they serve.
func (f *fault) serving(master int) int {
	n := 0
	log := f.log()
	for _, w := range workersOf(master) {
		if len(lines(log, "msg=serving pid="+strconv.Itoa(w)+" ")) > 0 {
			n++
		}
	}
	return n
}

// reloads returns the log lines of master that end a reload: complete, failed, refused.
func (f *fault) reloads(master int) []string {
	return f.linesOf(master, `msg="reload (complete|failed|refused)`)
}

// hup sends HUP to master and returns the line that ends that reload.
func (f *fault) hup(master int) string {
	f.t.Helper()
	n := len(f.reloads(master))
	f.signal(master, syscall.SIGHUP)
	var got []string
	waitFor(f.t, 20*time.Second, func() bool { got = f.reloads(master); return len(got) > n }, "the reload of %d to end", master)
	return got[n]
}

// victim is a file a planted symlink points at; untouched checks that nothing wrote,
// renamed or removed it.
func (f *fault) victim() (path string, untouched func()) {
	f.t.Helper()
	defer func() { f.untouched = untouched }()
	dir := f.path("elsewhere")
	os.Mkdir(dir, 0o755)
	path = dir + "/victim"
	if err := os.WriteFile(path, []byte("precious\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	before, _ := os.Stat(path)
	return path, func() {
		f.t.Helper()
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != "precious\n" || fi.Mode() != before.Mode() || !fi.ModTime().Equal(before.ModTime()) {
			f.t.Errorf("the symlink's target was touched: %q %v", b, err)
		}
	}
}

// plant replaces name in the service directory with a symlink to target.
func (f *fault) plant(name, target string) {
	f.t.Helper()
	os.Remove(f.path(name))
	if err := os.Symlink(target, f.path(name)); err != nil {
		f.t.Fatal(err)
	}
}

// notifySocket returns the NOTIFY_SOCKET a live worker of master was given.
func (f *fault) notifySocket(master int) string {
	f.t.Helper()
	var addr string
	waitFor(f.t, 20*time.Second, func() bool {
		for _, w := range workersOf(master) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", w))
			for _, kv := range strings.Split(string(b), "\x00") {
				if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
					addr = v
					return true
				}
			}
		}
		return false
	}, "a worker of %d to show its NOTIFY_SOCKET", master)
	return addr
}

// flood sends datagrams to the notify socket at addr from this process (not a worker)
// until stop is called, which returns how many were sent. withFDs attaches two fds to
// each.
func (f *fault) flood(addr, msg string, withFDs bool) (stop func() int) {
	f.t.Helper()
	n, err := sdnotify.Open(addr)
	if err != nil {
		f.t.Fatal(err)
	}
	fds := []int{0, 0}
	done := make(chan struct{})
	count := make(chan int, 1)
	go func() {
		sent := 0
		defer func() { n.Close(); count <- sent }()
		for {
			select {
			case <-done:
				return
			default:
			}
			var err error
			if withFDs {
				err = n.NotifyWithFDs(fds, msg)
			} else {
				err = n.Notify(msg)
			}
			if err != nil {
				return // the master went away
			}
			sent++
		}
	}()
	return func() int { close(done); return <-count }
}

// dialControl connects to the control socket.
func (f *fault) dialControl() net.Conn {
	f.t.Helper()
	c, err := net.Dial("unix", f.path("baton.sock"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// setNofile sets the soft RLIMIT_NOFILE of pid (the hard one stays: lowering it could not
// be undone without CAP_SYS_RESOURCE) and returns the old soft limit.
func setNofile(t *testing.T, pid int, n uint64) uint64 {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
	return old.Cur
}

// storm sends sig to pid again and again, as fast as it can, until the master has logged
// msg n times.
func (f *fault) storm(pid int, sig syscall.Signal, msg string, n int) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.lines(msg, pid) < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d did not log %q %d times under a storm of %v", pid, msg, n, sig)
		}
		syscall.Kill(pid, sig)
	}
}
