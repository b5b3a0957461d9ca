//go:build linux

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/bench/load"
)

// baton's users run servers baton's authors did not write: TestThirdParty runs one
// scenario with three of them as the worker command, under the fault matrix's load
// (bench/load, 4 loopback clients, a new connection per request: gunicorn's sync workers
// and http.server close every connection anyway) and with its checks:
//
//  1. baton with 2 workers, TAG=1 in their env; the load starts;
//  2. HUP with TAG=2 in the config: a new pool of generation 1 replaces the first, rolling
//     (a canary worker first, on probation: reload.soak, during which a [health] check,
//     python3's urllib GET of the service, must pass; then the other);
//  3. USR2: a new master, generation 2, committed after a short soak, its check passed;
//  4. the load stops (connections the kernel queued when the last listener closes would be
//     reset: the matrix's whyStopped); `baton stop --wait`; the reaper exits: nothing of
//     the service is left.
//
// After 2 and 3 the service must settle as the matrix's do (one master, in charge, its 2
// workers ready, its fds as at start, the pid files right), and every process under the
// reaper but that master, a server's own children included, must carry the generation
// and the TAG in charge. No request may fail, and nothing may log an error.

// thirdParty is a server as a worker command.
type thirdParty struct {
	name    string
	need    string            // a program it runs; the test skips when it is missing
	files   map[string]string // written to the service directory
	command func(s *service) []string
	ready   string // ready = …
	env     string // more entries of env = { TAG = …, … }
	worker  string // more [worker] lines
	// allAtOnce: [rollout] strategy = "all" (every new worker at once, the old ones retired
	// together, paced by stop_spread) rather than rolling with a canary (the roll paces).
	allAtOnce bool
	procs     int // processes of a generation: baton's workers and their own children
}

const python3 = "/usr/bin/python3" // Debian's, as gunicorn's: package python3

// gunicornApp is the WSGI app gunicorn serves: who answered, and its TAG.
const gunicornApp = `import os

def app(environ, start_response):
    body = ("pid=%d generation=%s worker=%s tag=%s\n" % (os.getpid(),
        os.environ["BATON_GENERATION"], os.environ["BATON_WORKER"], os.environ["TAG"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// pythonHandler is the python3 servers' request handler: it answers with the worker's pid,
// generation, slot and TAG, as the reference worker does.
const pythonHandler = `class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("pid=%d generation=%s worker=%s tag=%s\n" % (os.getpid(),
            os.environ["BATON_GENERATION"], os.environ["BATON_WORKER"], os.environ["TAG"])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass
`

var thirdParties = []thirdParty{
	{
		// Socket activation natively: baton execs gunicorn, so LISTEN_PID is gunicorn's
		// own pid and it takes fd 3. `--bind fd://3` as well makes it take fd 3 twice and
		// exit with EBADF (a crash loop); alone, it works only where gunicorn does not
		// see its own pid in LISTEN_PID. READY=1 comes from its arbiter, before it forks
		// its workers: connections wait in the queue meanwhile. Each arbiter forks 2 sync workers of its own,
		// which baton stops through the process group (TERM: gunicorn's graceful stop).
		// They get TERM twice, from baton and from their arbiter; the second one lands
		// after "Worker exiting", while Python finalizes with its handlers reset, so the
		// arbiter logs a WARNING "terminated due to signal 15" per worker: harmless, and
		// the same under systemd's default KillMode=control-group.
		name: "gunicorn", need: "/usr/bin/gunicorn",
		files: map[string]string{"app.py": gunicornApp},
		command: func(s *service) []string {
			return []string{"/usr/bin/gunicorn", "--chdir", s.dir, "--workers", "2", "--graceful-timeout", "5", "app:app"}
		},
		ready: "notify", procs: 2 * 3,
	},
	{
		// gunicorn again, its reload's and upgrade's old arbiters stopped one at a time
		// (stop_spread), each told its drain deadline: `sh -c 'exec gunicorn
		// --graceful-timeout "$BATON_STOP_TIMEOUT" …'` (exec: LISTEN_PID stays right).
		// gunicorn's option takes whole seconds; stop_timeout is "10s", so the variable is
		// "10".
		name: "gunicorn-stop-spread", need: "/usr/bin/gunicorn",
		files: map[string]string{"app.py": gunicornApp},
		command: func(s *service) []string {
			return []string{"/bin/sh", "-c", `exec /usr/bin/gunicorn --chdir "$0" --workers 2 --graceful-timeout "$BATON_STOP_TIMEOUT" app:app`, s.dir}
		},
		ready: "notify", procs: 2 * 3, worker: `stop_spread = "3s"`, allAtOnce: true,
	},
	{
		// A few lines of python3: http.server on fd 3, no sd_notify. The listener is shared
		// with the other workers, so it must never block in accept (it is non-blocking
		// already: baton's socket is; said again for clarity). On TERM, shutdown() lets
		// serve_forever finish the request in hand and accept no other.
		name: "http.server", need: python3,
		files: map[string]string{"server.py": `import http.server, os, signal, socket, threading

` + pythonHandler + `
srv = http.server.HTTPServer(None, Handler, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
srv.socket.setblocking(False)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
threading.Thread(target=srv.serve_forever, args=(0.1,)).start()
signal.sigwait({signal.SIGTERM})
srv.shutdown()
`},
		command: func(s *service) []string { return []string{python3, s.path("server.py")} },
		ready:   "started", procs: 2,
	},
	{
		// A Go server on go-systemd's activation.Listeners(): this test binary in
		// TESTWORKER=activation (testworker_test.go). It drains as hello does: with
		// http.Server.Shutdown alone it lost 2 to 9 requests in 10 runs of 11 here, each
		// one read by net/http after Shutdown began and closed without a response
		// (serveDraining).
		name:    "go-activation",
		command: func(s *service) []string { return []string{bin.self} },
		ready:   "started", procs: 2,
		env: fmt.Sprintf(`, BATON_E2E_HELPER = "worker", TESTWORKER = "activation", GODEBUG = %q`,
			"containermaxprocs=0,updatemaxprocs=0"),
	},
}

func TestThirdParty(t *testing.T) {
	for _, tp := range thirdParties {
		t.Run(tp.name, func(t *testing.T) { runThirdParty(t, tp) })
	}
}

func runThirdParty(t *testing.T, tp thirdParty) {
	if tp.need != "" {
		if _, err := os.Stat(tp.need); err != nil {
			t.Skipf("%s is not installed (%v); CI installs it (.ci/run)", tp.need, err)
		}
	}
	s := newService(t)
	for name, body := range tp.files {
		if err := os.WriteFile(s.path(name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := &fault{service: s, c: &faultCase{name: tp.name}} // the matrix's checks: 2 workers, no failure
	first := s.run(tp.config(s, "1"))
	s.waitWorkers(first, 2)
	base := fdKinds(t, first)
	ld, err := load.Start(load.Options{Addr: s.addr, Clients: clients, Mode: load.NewConn, Duration: 10 * time.Minute, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.ld = ld
	t.Cleanup(func() { ld.Stop() })
	f.progress()
	f.only(first, 1, "1", tp.procs)

	s.writeConfig(tp.config(s, "2"))
	if got := f.hup(first); !strings.Contains(got, `msg="reload complete"`) {
		t.Fatalf("HUP: %s", got)
	}
	if len(f.linesOf(first, `msg="reload: the canary is ready; probation before the rest"`)) != 1 && !tp.allAtOnce {
		t.Errorf("the reload's canary was not on probation")
	}
	if master, st := f.settle(base); master != first || st.Generation != 1 {
		t.Fatalf("after HUP: master %d generation %d in charge, want %d generation 1", master, st.Generation, first)
	}
	f.only(first, 1, "2", tp.procs)
	f.progress()

	nw := f.usr2(first)
	f.gone(first)
	if len(f.linesOf(nw, `msg="rolling upgrade: the canary is ready; probation before the rest"`)) != 1 && !tp.allAtOnce {
		t.Errorf("the upgrade's canary was not on probation")
	}
	if master, st := f.settle(base); master != nw || st.Generation != 2 {
		t.Fatalf("after USR2: master %d generation %d in charge, want %d generation 2", master, st.Generation, nw)
	}
	f.only(nw, 2, "2", tp.procs)
	f.progress()

	f.checkFailures(ld.Stop())
	s.onlyGeneration(2, 5)
	if out, code := s.baton("stop", "--socket", s.path("baton.sock"), "--wait"); code != 0 {
		t.Errorf("baton stop --wait = %d %q", code, out)
	}
	s.waitExit(30 * time.Second)
	if strings.Contains(tp.worker, "stop_spread") {
		// The reload's old pool, the upgrade's old workers, the stop's: each paced.
		if got := len(lines(s.log(), `msg="workers stop one at a time"`)); got != 3 {
			t.Errorf("%d paced retires logged, want 3 (reload, upgrade, stop)", got)
		}
	}
	var bad []string
	for _, e := range []string{"level=ERROR", "[ERROR]", "[CRITICAL]", "Traceback", "panic:", "health check failed"} {
		bad = append(bad, lines(s.log(), e)...)
	}
	if len(bad) > 0 {
		t.Errorf("errors in the log:\n%s", strings.Join(bad, "\n"))
	}
}

// config is the service's config with the server as its 2 workers, TAG=tag in their env.
func (tp thirdParty) config(s *service, tag string) string {
	rollout := "strategy = \"rolling\"\ncanary = 1"
	if tp.allAtOnce {
		rollout = "strategy = \"all\""
	}
	cmd := tp.command(s)
	for i, a := range cmd {
		cmd[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`pidfile = "baton.pid"
control_socket = "baton.sock"

[[listen]]
name = "http"
address = %q

[worker]
command = [%s]
count = 2
env = { TAG = %q%s }
ready = %q
stop_timeout = "10s"
start_timeout = "20s"
%s

[upgrade]
soak = "200ms"

[reload]
soak = "300ms"

[health]
check = [%q, "-c", "import sys, urllib.request; urllib.request.urlopen('http://' + sys.argv[1] + '/', timeout=2)", %q]
check_interval = "100ms"

[rollout]
%s
`, s.addr, strings.Join(cmd, ", "), tag, tp.env, tp.ready, tp.worker, python3, s.addr, rollout)
}

// only waits until the live processes under the reaper but master, the servers' own
// children included, are procs processes of generation gen with TAG=tag: nothing of a
// retired pool or generation is left.
func (f *fault) only(master, gen int, tag string, procs int) {
	f.t.Helper()
	want := []string{"BATON_GENERATION=" + strconv.Itoa(gen), "TAG=" + tag}
	check := func() string {
		var ours, others []int
		for _, pid := range descendants(f.reaper.Process.Pid) {
			if pid == master || !alive(pid) {
				continue
			}
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			env := strings.Split(string(b), "\x00")
			if slices.Contains(env, want[0]) && slices.Contains(env, want[1]) {
				ours = append(ours, pid)
			} else if alive(pid) {
				others = append(others, pid)
			}
		}
		if len(ours) == procs && len(others) == 0 {
			return ""
		}
		return fmt.Sprintf("%d processes with %v, want %d; others: %v", len(ours), want, procs, describePids(others))
	}
	deadline := time.Now().Add(20 * time.Second)
	for why := check(); why != ""; why = check() {
		if time.Now().After(deadline) {
			f.t.Fatalf("after 20s, not only generation %d with TAG=%s: %s", gen, tag, why)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition
	}
}

// TestStrayUSR2 pins what the README says of `systemctl kill -s USR2 UNIT`, which signals
// every process of the unit: baton starts its workers with USR2 ignored, so a server that
// keeps that disposition (hello) never sees it, but a server that installs its own handler
// receives it: gunicorn's arbiter handles USR2 by re-executing itself. The master alone
// must get it: `baton upgrade`, or `systemctl kill --kill-whom=main -s USR2 UNIT`.
func TestStrayUSR2(t *testing.T) {
	const usr2 = 1 << (int(unix.SIGUSR2) - 1)
	t.Run("hello", func(t *testing.T) {
		s := newService(t)
		for _, w := range s.waitWorkers(s.run(s.helloConfig(2, "")), 2) {
			if ign, err := sigIgn(w); err != nil || ign&usr2 == 0 {
				t.Errorf("hello worker %d: SigIgn %x, %v: USR2 not ignored", w, ign, err)
			}
		}
	})
	t.Run("gunicorn", func(t *testing.T) {
		tp := thirdParties[0]
		if _, err := os.Stat(tp.need); err != nil {
			t.Skipf("%s is not installed (%v); CI installs it (.ci/run)", tp.need, err)
		}
		s := newService(t)
		for name, body := range tp.files {
			if err := os.WriteFile(s.path(name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ws := s.waitWorkers(s.run(tp.config(s, "1")), 2)
		// gunicorn installs its handlers before it says READY=1: ready workers have them.
		s.waitLog(`msg="worker ready"`, 2)
		for _, w := range ws {
			if cgt, err := sigMask(w, "SigCgt"); err != nil || cgt&usr2 == 0 {
				t.Fatalf("gunicorn arbiter %d: SigCgt %x, %v: USR2 not caught", w, cgt, err)
			}
		}
		for _, w := range ws { // what systemctl kill -s USR2 does to the workers
			if err := unix.Kill(w, unix.SIGUSR2); err != nil {
				t.Fatal(err)
			}
		}
		s.waitLog(`Handling signal: usr2`, len(ws))
	})
}

// watchdogParties are servers baton's authors did not write that keep a systemd watchdog
// (WatchdogSec=, sd_watchdog_enabled(3)) their own way; under baton's [worker] watchdog they
// get WATCHDOG_USEC and WATCHDOG_PID as systemd gives them. Each logs its pings ("watchdog
// ping n=… pid=…") and stops pinging, serving on, once $dir/hang-<its pid> exists: a main
// loop that hangs while the process lives.
var watchdogParties = []thirdParty{
	{
		// go-systemd's daemon package: SdNotify(READY=1), SdWatchdogEnabled, SdNotify(WATCHDOG=1);
		// activation.Listeners for the socket (testworker_test.go, activation-watchdog).
		name:    "go-systemd",
		command: func(s *service) []string { return []string{bin.self} },
		env: fmt.Sprintf(`, BATON_E2E_HELPER = "worker", TESTWORKER = "activation-watchdog", TESTWORKER_DIR = %q, GODEBUG = %q`,
			"DIR", "containermaxprocs=0,updatemaxprocs=0"),
	},
	{
		// python3 alone: fd 3, and sd_notify as its man page describes the protocol, with a
		// plain socket.sendto to $NOTIFY_SOCKET.
		name: "python3", need: python3,
		files: map[string]string{"server.py": `import http.server, os, signal, socket, sys, threading, time

` + pythonHandler + `
def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), addr)

def watchdog(usec):
    hang = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hang-%d" % os.getpid())
    n = 0
    while True:
        time.sleep(usec / 2e6)
        if os.path.exists(hang):
            print("watchdog hangs pid=%d" % os.getpid(), file=sys.stderr, flush=True)
            return
        notify("WATCHDOG=1")
        n += 1
        print("watchdog ping n=%d pid=%d" % (n, os.getpid()), file=sys.stderr, flush=True)

srv = http.server.HTTPServer(None, Handler, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
srv.socket.setblocking(False)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
threading.Thread(target=srv.serve_forever, args=(0.1,)).start()
notify("READY=1")
usec = int(os.environ.get("WATCHDOG_USEC", "0"))
if usec > 0 and int(os.environ.get("WATCHDOG_PID", os.getpid())) == os.getpid():
    threading.Thread(target=watchdog, args=(usec,), daemon=True).start()
signal.sigwait({signal.SIGTERM})
srv.shutdown()
`},
		command: func(s *service) []string { return []string{python3, s.path("server.py")} },
	},
}

// TestThirdPartyWatchdog: with `watchdog = "1s"`, each server's pings keep its 2 workers
// alive (4 pings each, 2 s, and no watchdog failure); worker 1 that stops pinging is
// stopped (TERM: it drains) and restarted, reason "watchdog timeout", while the load runs:
// no request fails, and the service settles as the fault matrix's do.
func TestThirdPartyWatchdog(t *testing.T) {
	for _, tp := range watchdogParties {
		t.Run(tp.name, func(t *testing.T) {
			if tp.need != "" {
				if _, err := os.Stat(tp.need); err != nil {
					t.Skipf("%s is not installed (%v)", tp.need, err)
				}
			}
			s := newService(t)
			for name, body := range tp.files {
				if err := os.WriteFile(s.path(name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tp.env = strings.ReplaceAll(tp.env, `"DIR"`, strconv.Quote(s.dir))
			tp.ready, tp.procs, tp.worker = "notify", 2, `watchdog = "1s"`
			f := &fault{service: s, c: &faultCase{name: tp.name}}
			first := s.run(tp.config(s, "1"))
			ws := s.waitWorkers(first, 2)
			base := fdKinds(t, first)
			ld, err := load.Start(load.Options{Addr: s.addr, Clients: clients, Mode: load.NewConn, Duration: 10 * time.Minute, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			f.ld = ld
			t.Cleanup(func() { ld.Stop() })

			for _, w := range ws {
				s.waitLog(fmt.Sprintf(`watchdog ping n=4 pid=%d\b`, w), 1)
			}
			if got := lines(s.log(), `msg="worker watchdog`); len(got) > 0 {
				t.Fatalf("workers that ping were stopped by their watchdog:\n%s", strings.Join(got, "\n"))
			}
			if got := workersOf(first); !slices.Equal(sorted(got), sorted(ws)) {
				t.Fatalf("workers %v, want %v still", got, ws)
			}
			f.progress()

			hung := ws[0]
			if err := os.WriteFile(s.path(fmt.Sprintf("hang-%d", hung)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			f.wait(`msg="worker watchdog: stopping it"`, first, fmt.Sprintf(`worker_pid=%d\b`, hung), `why="watchdog timeout \(no WATCHDOG=1 within 1s\)"`)
			f.wait(`msg="worker failed; restarting"`, first, fmt.Sprintf(`\(pid %d\) watchdog timeout`, hung))
			if master, st := f.settle(base); master != first || st.Generation != 1 {
				t.Fatalf("after the restart: master %d generation %d in charge, want %d generation 1", master, st.Generation, first)
			}
			if slices.Contains(workersOf(first), hung) {
				t.Fatalf("the worker that stopped pinging (%d) still runs", hung)
			}
			f.progress()
			f.checkFailures(ld.Stop())
			if out, code := s.baton("stop", "--socket", s.path("baton.sock"), "--wait"); code != 0 {
				t.Errorf("baton stop --wait = %d %q", code, out)
			}
			s.waitExit(30 * time.Second)
			var bad []string
			for _, e := range []string{"level=ERROR", "Traceback", "panic:", "testworker:"} {
				bad = append(bad, lines(s.log(), e)...)
			}
			if len(bad) > 0 {
				t.Errorf("errors in the log:\n%s", strings.Join(bad, "\n"))
			}
		})
	}
}

func sorted(s []int) []int { s = slices.Clone(s); slices.Sort(s); return s }
