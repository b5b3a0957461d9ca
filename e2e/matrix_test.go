//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
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
	reloadSoak   string // reload.soak, default 0s
	health       string // [health] lines; "" = none
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

[reload]
soak = %q

[health]
%s
`, s.addr, strings.Join(quoted, ", "), count, env, or(c.ready, "notify"), or(c.stopSignal, "TERM"),
		or(c.stopTimeout, "5s"), or(c.startTimeout, "10s"), c.worker, or(c.commit, "auto"), or(c.soak, "0s"), or(c.timeout, "30s"),
		or(c.reloadSoak, "0s"), c.health)
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
	ld    *load.Load // the load the steps run under

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
