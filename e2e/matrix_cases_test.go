//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// faultCases is the matrix. FAULTS.md is its table; keep the two in step.
func faultCases() []faultCase {
	var cs []faultCase
	for _, group := range [][]faultCase{masterFaults(), stormCases(), workerCases(), notifyCases(),
		controlCases(), pidFileCases(), configCases(), nofileCases(), probationCases(), rollingCases(), rollingUpgradeCases(), spreadCases()} {
		cs = append(cs, group...)
	}
	return cs
}

// withKeepAlive is c with keep-alive clients instead of a new connection per request.
func withKeepAlive(c faultCase) faultCase {
	c.name += "-keep-alive"
	c.load = keepAlive
	c.fast = false
	return c
}

// keepAliveVariants returns the keep-alive variant of each case of cs named.
func keepAliveVariants(cs []faultCase, names ...string) []faultCase {
	var out []faultCase
	for _, name := range names {
		for _, c := range cs {
			if c.name == name {
				out = append(out, withKeepAlive(c))
			}
		}
	}
	if len(out) != len(names) {
		panic(fmt.Sprintf("keepAliveVariants: %d of %v found", len(out), names))
	}
	return out
}

// Why a case may fail requests.
const (
	whyKilled = "SIGKILL cuts the requests in flight on a killed worker, and each client has at " +
		"most one request in flight there (on a keep-alive connection, its next request finds " +
		"the connection reset): at most one failure per client and killed worker"
	whyStopped = "when the last holder of the listening socket closes it, the connections the " +
		"kernel had queued and no worker accepted are reset: at most one per client (refused " +
		"connections after the stop are not counted)"
)

// masterFaults: kill -9, and SIGSTOP then SIGCONT, of the old master (O) and of the new
// one (N), at each step of an upgrade.
func masterFaults() []faultCase {
	var cs []faultCase
	for _, step := range []string{"upgrading", "soaking", "committing"} {
		c := conf{}
		if step == "soaking" {
			c.soak = "1h"
		}
		cs = append(cs,
			faultCase{name: "kill9-old-" + step, kind: "master", conf: c, end: end{gen: 2},
				steps: func(f *fault) {
					o, _, release := f.toStep(step)
					f.kill9(o) // O's workers get their stop signal (PDEATHSIG) and drain
					release()
				}},
			faultCase{name: "kill9-new-" + step, kind: "master", fast: step == "soaking", conf: c, end: end{gen: 1},
				steps: func(f *fault) {
					o, n, release := f.toStep(step)
					f.kill9(n)
					f.wait(`msg="upgrade rolled back`, o)
					release()
				}},
			faultCase{name: "stop-old-" + step, kind: "master", conf: c, end: end{gen: 2},
				steps: func(f *fault) {
					o, n, release := f.toStep(step)
					f.pause(o)
					f.advance(step, o, n, o, release)
					f.resume(o)
				}},
			faultCase{name: "stop-new-" + step, kind: "master", fast: step == "soaking", conf: c, end: end{gen: 2},
				steps: func(f *fault) {
					o, n, release := f.toStep(step)
					f.pause(n)
					f.advance(step, o, n, n, release)
					if step != "upgrading" {
						f.gone(o) // O committed while N was stopped
					}
					f.resume(n)
				}},
		)
	}
	cs = append(cs, kill9Serving)
	return append(cs, keepAliveVariants(cs, "kill9-new-soaking", "stop-new-committing")...)
}

// toStep starts an upgrade of the first master and brings it to step:
//
//	upgrading   N runs, its workers wait at a gate; release opens it
//	soaking     N is ready; O soaks (the case's config: soak = "1h")
//	committing  O's workers drain; one of them waits for a held connection, which release closes
func (f *fault) toStep(step string) (o, n int, release func()) {
	f.t.Helper()
	o, release = f.first, func() {}
	switch step {
	case "upgrading":
		f.write(conf{mode: "gate", gate: "n"})
		n = f.usr2(o)
		f.workersStarted(n, 2)
		release = func() { f.open("n") }
	case "soaking":
		n = f.usr2(o)
		f.ready(o, n)
	case "committing":
		release = f.hold(o)
		n = f.usr2(o)
		f.wait(`msg="committing the upgrade: old workers drain"`, o)
	}
	f.pidFiles(n, o)
	return o, n, release
}

// advance moves an upgrade at step on by one step while the master paused is stopped: N
// gets ready, O commits, O's last worker exits.
func (f *fault) advance(step string, o, n, paused int, release func()) {
	f.t.Helper()
	switch step {
	case "upgrading":
		release()
		if paused == n {
			waitFor(f.t, 20*time.Second, func() bool { return f.serving(n) == 2 }, "the workers of %d to serve", n)
		} else {
			f.wait(`msg="ready; waiting for the old master to commit the upgrade"`, n)
		}
	case "soaking":
		f.signal(o, syscall.SIGQUIT)
	case "committing":
		release()
		waitFor(f.t, 20*time.Second, func() bool { return len(workersOf(o)) == 0 }, "the last worker of %d to exit", o)
	}
}

// kill9Serving: kill -9 of the only master: its workers get their stop signal
// (PDEATHSIG), drain and exit; nothing is left and nothing listens.
var kill9Serving = faultCase{name: "kill9-master-serving", kind: "master",
	end: end{stopped: true, pidLeft: true, failed: clients, why: whyStopped},
	steps: func(f *fault) {
		f.signal(f.first, syscall.SIGKILL)
	}}

// stormCases: signal storms and the nginx dance.
func stormCases() []faultCase {
	cs := []faultCase{
		{name: "usr2-storm", kind: "storm", fast: true, conf: conf{soak: "1h"}, end: end{gen: 2},
			steps: func(f *fault) {
				o := f.first
				f.storm(o, syscall.SIGUSR2, `msg="USR2 ignored: an upgrade is already in flight"`, 5)
				n := f.newMaster(o)
				f.ready(o, n)
				if got := f.lines(`msg="upgrade started"`, o); got != 1 {
					f.t.Errorf("%d upgrades started, want 1", got)
				}
				f.signal(o, syscall.SIGQUIT)
				f.gone(o)
			}},
		{name: "hup-storm", kind: "storm", end: end{gen: 1},
			steps: func(f *fault) {
				o := f.first
				f.storm(o, syscall.SIGHUP, `msg="reload (complete|failed|refused)`, 10)
				if n := f.lines(`msg="reload (failed|refused)`, o); n != 0 {
					f.t.Errorf("%d reloads failed", n)
				}
			}},
		{name: "hup-usr2-interleaved", kind: "storm",
			steps: func(f *fault) {
				o := f.first
				for i := 0; i < 40; i++ {
					sig := syscall.SIGHUP
					if i%2 == 1 {
						sig = syscall.SIGUSR2
					}
					if syscall.Kill(o, sig) != nil {
						break // O committed an upgrade and exited
					}
				}
			}},
		{name: "winch-hup-interleaved", kind: "storm", end: end{gen: 1},
			steps: func(f *fault) {
				o := f.first
				for i := 0; i < 10; i++ {
					for _, sig := range []syscall.Signal{syscall.SIGWINCH, syscall.SIGHUP} {
						n := f.lines(`msg="signal received"`, o)
						f.signal(o, sig)
						waitFor(f.t, 20*time.Second, func() bool { return f.lines(`msg="signal received"`, o) > n }, "%d to take the signal", o)
					}
				}
			}},
		{name: "hup-old-during-soak", kind: "storm", conf: conf{soak: "1h"}, end: end{gen: 2},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				f.storm(o, syscall.SIGHUP, `msg="reload refused: an upgrade is in flight`, 5)
				f.pidFiles(n, o)
				f.signal(o, syscall.SIGQUIT)
				f.gone(o)
			}},
		{name: "hup-old-during-commit", kind: "storm", end: end{gen: 2},
			steps: func(f *fault) {
				o, _, release := f.toStep("committing")
				f.signal(o, syscall.SIGHUP)
				f.wait(`msg="reload refused: the upgrade is being committed`, o)
				release()
				f.gone(o)
			}},
		{name: "usr2-during-reload", kind: "storm", end: end{gen: 1},
			steps: func(f *fault) {
				o := f.first
				f.write(conf{mode: "gate", gate: "r"})
				f.signal(o, syscall.SIGHUP)
				f.wait(`msg="reload: starting new workers"`, o)
				f.signal(o, syscall.SIGUSR2)
				f.wait(`msg="USR2 ignored: a reload is in flight"`, o)
				f.open("r")
				f.wait(`msg="reload complete"`, o)
			}},
		{name: "usr2-new-during-soak", kind: "storm", conf: conf{soak: "1h"}, end: end{gen: 2},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				f.signal(n, syscall.SIGUSR2)
				f.wait(`msg="USR2 ignored: this master's own upgrade is not committed yet"`, n)
				f.signal(o, syscall.SIGQUIT)
				f.gone(o)
			}},
		{name: "hup-new-during-soak", kind: "storm", conf: conf{soak: "1h"}, end: end{gen: 2},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				if l := f.hup(n); !strings.Contains(l, `msg="reload complete"`) {
					f.t.Errorf("the new master's reload: %s", l)
				}
				f.signal(o, syscall.SIGQUIT)
				f.gone(o)
			}},
		{name: "quit-new-during-soak", kind: "storm", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				f.signal(n, syscall.SIGQUIT)
				f.wait(`msg="upgrade rolled back`, o)
			}},
		{name: "term-new-during-soak", kind: "storm", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				f.signal(n, syscall.SIGTERM)
				f.wait(`msg="upgrade rolled back`, o)
			}},
		{name: "quit-old-while-new-starts", kind: "storm", end: end{gen: 2},
			steps: func(f *fault) {
				o, _, release := f.toStep("upgrading")
				f.signal(o, syscall.SIGQUIT)
				f.wait(`msg="QUIT: committing as soon as the new master is ready"`, o)
				release()
				f.gone(o)
			}},
		{name: "term-old-during-soak", kind: "storm", conf: conf{soak: "1h"},
			end: end{stopped: true, failed: clients, why: whyStopped},
			steps: func(f *fault) {
				o, _, _ := f.toStep("soaking")
				f.signal(o, syscall.SIGTERM)
			}},
		{name: "nginx-manual-commit", kind: "storm", conf: conf{commit: "manual"}, end: end{gen: 2},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				f.winch(o)
				f.pidFiles(n, o)
				f.signal(o, syscall.SIGQUIT)
				f.gone(o)
			}},
		{name: "nginx-manual-rollback", kind: "storm", fast: true, conf: conf{commit: "manual"}, end: end{gen: 1},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				f.winch(o)
				f.signal(o, syscall.SIGHUP)
				f.waitWorkers(o, 2)
				f.signal(n, syscall.SIGQUIT)
				f.wait(`msg="upgrade rolled back`, o)
			}},
	}
	return append(cs, keepAliveVariants(cs, "hup-storm", "nginx-manual-commit", "nginx-manual-rollback")...)
}

// workerCases: misbehaving workers, in a reload or an upgrade, beside the reference
// worker that serves the load.
func workerCases() []faultCase {
	reload := func(name string, next conf, c faultCase) faultCase {
		c.name, c.kind = "reload-"+name, "worker"
		steps := c.steps
		c.steps = func(f *fault) {
			f.write(next)
			f.hup(f.first)
			if steps != nil {
				steps(f)
			}
		}
		return c
	}
	upgrade := func(name string, next conf, c faultCase) faultCase {
		c.name, c.kind = "upgrade-"+name, "worker"
		steps := c.steps
		c.steps = func(f *fault) {
			f.write(next)
			n := f.usr2(f.first)
			if steps != nil {
				steps(f)
			} else if c.end.gen == 1 {
				f.wait(`msg="upgrade rolled back`, f.first)
				f.gone(n)
			} else {
				f.gone(f.first)
			}
		}
		return c
	}
	// back reloads the reference worker alone, after a reload to a misbehaving one.
	back := func(f *fault) {
		f.write(conf{})
		if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
			f.t.Errorf("the reload back to the reference worker: %s", l)
		}
	}
	failed := func(f *fault) {
		if l := f.reloads(f.first); !strings.Contains(l[len(l)-1], "reload failed") {
			f.t.Errorf("the reload did not fail: %s", l[len(l)-1])
		}
	}
	ignoreStop := conf{stopSignal: "USR1", stopTimeout: "1s"} // hello ignores USR1: it serves on until SIGKILL
	cs := []faultCase{
		reload("crash", conf{mode: "crash"}, faultCase{end: end{gen: 1}, steps: failed}),
		upgrade("crash", conf{mode: "crash"}, faultCase{fast: true, end: end{gen: 1}}),
		reload("never-ready", conf{mode: "never-ready", startTimeout: "500ms"}, faultCase{end: end{gen: 1}, steps: failed}),
		upgrade("never-ready", conf{mode: "never-ready", startTimeout: "500ms"}, faultCase{end: end{gen: 1}}),
		reload("crash-loop-after-ready", conf{mode: "ready-exit", slot: 2, gate: "crash"}, faultCase{end: end{gen: 1},
			steps: func(f *fault) {
				// The reload is complete; worker 2 of the new pool now exits right after
				// each READY=1, worker 1 serves.
				f.open("crash")
				f.wait(`msg="worker crash loop; restarting"`, f.first)
				back(f)
			}}),
		{name: "upgrade-exit-after-ready-during-soak", kind: "worker", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				// N's workers exit right after READY=1 once the gate "crash" is open: N is on
				// probation until O commits, so the first exit fails it, and O rolls back by
				// itself.
				f.write(conf{mode: "ready-exit", gate: "crash"})
				o := f.first
				n := f.usr2(o)
				f.ready(o, n)
				f.open("crash")
				f.wait(`msg="upgrade rolled back`, o, `reason="worker \d \(pid \d+\) exit status 0 during probation"`)
				f.gone(n)
			}},
		reload("ignore-stop-signal", conf{}, faultCase{conf: ignoreStop, end: end{gen: 1, failed: 2 * clients, why: whyKilled},
			steps: func(f *fault) { f.waitLog(`msg="worker did not stop in time; killing it"`, 2) }}),
		upgrade("ignore-stop-signal", conf{}, faultCase{conf: ignoreStop, end: end{gen: 2, failed: 2 * clients, why: whyKilled},
			steps: func(f *fault) {
				f.waitLog(`msg="worker did not stop in time; killing it"`, 2)
				f.gone(f.first)
			}}),
		reload("ignore-term-not-serving", conf{}, faultCase{conf: conf{mode: "ignore-term", slot: 2, stopTimeout: "1s"}, end: end{gen: 1},
			steps: func(f *fault) { f.waitLog(`msg="worker did not stop in time; killing it"`, 1) }}),
		reload("stop-signal-kill", conf{}, faultCase{conf: conf{stopSignal: "KILL"}, end: end{gen: 1, failed: 2 * clients, why: whyKilled}}),
		{name: "worker-kill9-mid-request", kind: "worker", end: end{gen: 1, failed: clients, why: whyKilled},
			steps: func(f *fault) {
				w := workersOf(f.first)[0]
				f.kill9(w)
				f.wait(`msg="worker failed; restarting"`, f.first, `\(pid `+fmt.Sprint(w)+`\)`)
			}},
		{name: "worker-sigstop-then-reload", kind: "worker", conf: conf{stopTimeout: "1s"}, end: end{gen: 1, failed: clients,
			why: "a stopped worker answers nothing: the requests it had accepted fail when it is killed at its stop timeout, at most one per client"},
			steps: func(f *fault) {
				w := workersOf(f.first)[0]
				f.pause(w)
				f.write(conf{})
				f.hup(f.first)
				f.wait(`msg="worker did not stop in time; killing it"`, f.first)
			}},
		// [worker] watchdog: hello pings every half second; a SIGSTOPped one sends nothing.
		// At the timeout it gets TERM then SIGCONT (systemd.kill(5)): it wakes, drains what
		// it had accepted while stopped (answered late, not lost), exits, and its slot
		// restarts. The other worker serves meanwhile: the listening socket's queue is
		// shared, and a stopped process accepts nothing from it.
		{name: "worker-sigstop-watchdog", kind: "worker", fast: true, conf: conf{worker: `watchdog = "1s"`}, end: end{gen: 1},
			steps: func(f *fault) {
				w := workersOf(f.first)[0]
				f.pause(w)
				f.wait(`msg="worker watchdog: stopping it"`, f.first, `worker_pid=`+fmt.Sprint(w)+`\b`, `why="watchdog timeout \(no WATCHDOG=1 within 1s\)"`)
				f.wait(`msg="worker failed; restarting"`, f.first, `\(pid `+fmt.Sprint(w)+`\) watchdog timeout`)
				if n := f.lines(`msg="worker did not stop in time; killing it"`, f.first); n != 0 {
					f.t.Errorf("the stopped worker was killed (%d), not woken to drain", n)
				}
			}},
		// Without SIGCONT (stop_signal = "KILL" sends none): killed at once, requests cut.
		{name: "worker-sigstop-watchdog-kill", kind: "worker", conf: conf{worker: `watchdog = "1s"`, stopSignal: "KILL"}, end: end{gen: 1, failed: clients, why: whyKilled},
			steps: func(f *fault) {
				w := workersOf(f.first)[0]
				f.pause(w)
				f.wait(`msg="worker failed; restarting"`, f.first, `\(pid `+fmt.Sprint(w)+`\) watchdog timeout`)
			}},
		reload("grandchild-holds-listener", conf{mode: "fork"}, faultCase{end: end{gen: 1}, steps: func(f *fault) { back(f) }}),
		upgrade("grandchild-holds-listener", conf{}, faultCase{conf: conf{mode: "fork"}, end: end{gen: 2}}),
		reload("shell-wrapped", conf{shell: true}, faultCase{fast: true, end: end{gen: 1}, steps: func(f *fault) { back(f) }}),
		upgrade("shell-wrapped", conf{shell: true}, faultCase{conf: conf{shell: true}, end: end{gen: 2}}),
		reload("spew-output", conf{mode: "spew", slot: 2}, faultCase{end: end{gen: 1},
			steps: func(f *fault) {
				if _, err := f.statusOf(); err != nil {
					f.t.Errorf("status after the spew: %v", err)
				}
			}}),
		reload("close-fd3", conf{mode: "close-fd3", slot: 2}, faultCase{end: end{gen: 1}}),
	}
	return append(cs, keepAliveVariants(cs, "reload-ignore-stop-signal", "worker-kill9-mid-request", "worker-sigstop-watchdog",
		"upgrade-grandchild-holds-listener", "upgrade-shell-wrapped")...)
}

// notifyCases: datagrams on the workers' notify socket from a process that is not a
// worker, and floods of them; the master stays responsive and logs each kind once per 10 s.
func notifyCases() []faultCase {
	flood := func(name, msg string, withFDs bool, logged string) faultCase {
		return faultCase{name: "notify-flood-" + name, kind: "notify", fast: name == "malformed", end: end{gen: 1},
			steps: func(f *fault) {
				o := f.first
				stop := f.flood(f.notifySocket(o), msg, withFDs)
				f.wait(logged, o)
				if _, err := f.statusOf(); err != nil {
					f.t.Errorf("status during the flood: %v", err)
				}
				f.write(conf{})
				if l := f.hup(o); !strings.Contains(l, "reload complete") {
					f.t.Errorf("reload during the flood: %s", l)
				}
				sent := stop()
				if got := f.lines(logged, o); got != 1 {
					f.t.Errorf("%q logged %d times for %d datagrams, want once", logged, got, sent)
				}
				f.t.Logf("%d datagrams sent", sent)
			}}
	}
	return []faultCase{
		{name: "notify-spoof-ready-new-master", kind: "notify", end: end{gen: 2},
			steps: func(f *fault) {
				o, n, release := f.toStep("upgrading")
				stop := f.flood(f.notifySocket(n), "READY=1", false)
				f.wait(`msg="notify message from a process that is not a worker dropped"`, n)
				stop()
				if f.lines(`msg="new master ready"`, o) != 0 {
					f.t.Fatal("a spoofed READY=1 made the new master ready")
				}
				release()
				f.gone(o)
			}},
		{name: "notify-spoof-ready-reload", kind: "notify", end: end{gen: 1},
			steps: func(f *fault) {
				o := f.first
				f.write(conf{mode: "gate", gate: "r"})
				f.signal(o, syscall.SIGHUP)
				f.wait(`msg="reload: starting new workers"`, o)
				stop := f.flood(f.notifySocket(o), "READY=1", false)
				f.wait(`msg="notify message from a process that is not a worker dropped"`, o)
				stop()
				if len(f.reloads(o)) != 0 {
					f.t.Fatal("a spoofed READY=1 ended the reload")
				}
				f.open("r")
				f.wait(`msg="reload complete"`, o)
			}},
		flood("malformed", "this is not KEY=VALUE\n\x01", false, `msg="malformed notify datagram dropped"`),
		flood("stranger-ready", "READY=1", false, `msg="notify message from a process that is not a worker dropped"`),
		flood("with-fds", "FDSTORE=1\nFDNAME=evil", true, `msg="notify message from a process that is not a worker dropped"`),
		flood("oversized", strings.Repeat("X=", 40000), false, `msg="malformed notify datagram dropped"`),
	}
}

// controlCases: abuse of the control socket, and its verbs under load.
func controlCases() []faultCase {
	return []faultCase{
		{name: "control-garbage", kind: "control", fast: true, end: end{gen: 1},
			steps: func(f *fault) {
				junk := []string{"hello\n", "{not json\n", "\x00\x01\x02\n", `{"verb":"explode"}` + "\n",
					strings.Repeat("A", 10000) + "\n", `{"verb":"status","wait":"yes"}` + "\n"}
				var wg sync.WaitGroup
				errs := make(chan string, 100)
				for i := 0; i < 30; i++ { // the master serves 32 at once, and closes more at once
					c := f.dialControl()
					wg.Go(func() {
						c.SetDeadline(time.Now().Add(20 * time.Second))
						c.Write([]byte(junk[i%len(junk)]))
						line, err := bufio.NewReader(c).ReadString('\n')
						if err != nil || !strings.Contains(line, `"error"`) {
							errs <- fmt.Sprintf("%.40q: %q %v", junk[i%len(junk)], line, err)
						}
					})
				}
				f.write(conf{})
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("reload under garbage: %s", l)
				}
				wg.Wait()
				close(errs)
				for e := range errs {
					f.t.Errorf("garbage not refused with an error: %s", e)
				}
			}},
		{name: "control-silent-clients", kind: "control", end: end{gen: 1},
			steps: func(f *fault) {
				var cs []net.Conn
				for i := 0; i < 20; i++ {
					cs = append(cs, f.dialControl())
				}
				f.write(conf{})
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("reload with 20 silent clients: %s", l)
				}
				if _, err := f.statusOf(); err != nil {
					f.t.Errorf("status with 20 silent clients: %v", err)
				}
				for _, c := range cs { // the master times each one out
					c.SetReadDeadline(time.Now().Add(30 * time.Second))
					line, err := bufio.NewReader(c).ReadString('\n')
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						f.t.Errorf("a silent client was not timed out by the master: %v", err)
					} else if line != "" && !strings.Contains(line, "error") {
						f.t.Errorf("a silent client got %q", line)
					}
				}
			}},
		{name: "control-other-user", kind: "control", end: end{gen: 1},
			steps: func(f *fault) {
				if os.Getuid() != 0 {
					f.t.Skip("needs root to become another user")
				}
				os.Chmod(f.path("baton.sock"), 0o777) // the file mode must not be what keeps them out
				var wg sync.WaitGroup
				for i := 0; i < 30; i++ {
					wg.Go(func() {
						cmd := exec.Command(bin.baton, "status", "--socket", f.path("baton.sock"))
						cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
						out, err := cmd.CombinedOutput()
						if err == nil || !strings.Contains(string(out), "may not control this master") {
							f.t.Errorf("status as nobody: %v %q", err, out)
						}
					})
				}
				f.write(conf{})
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("reload while another user knocks: %s", l)
				}
				wg.Wait()
				if n := f.lines(`msg="control connection refused"`, f.first); n != 1 {
					f.t.Errorf("refusals logged %d times, want once (rate-limited)", n)
				}
			}},
		{name: "control-upgrade-wait", kind: "control", end: end{gen: 2},
			steps: func(f *fault) {
				out, code := f.baton("upgrade", "--socket", f.path("baton.sock"), "--wait")
				if code != 0 || !strings.Contains(out, "upgrade committed") {
					f.t.Errorf("upgrade --wait = %d %q", code, out)
				}
				f.gone(f.first)
			}},
		{name: "control-rollback-wait", kind: "control", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				_, n, _ := f.toStep("soaking")
				out, code := f.baton("rollback", "--socket", f.path("baton.sock"), "--wait")
				if code != 0 || !strings.Contains(out, "rolled back") {
					f.t.Errorf("rollback --wait = %d %q", code, out)
				}
				f.gone(n)
			}},
		{name: "control-stop-during-upgrade", kind: "control", conf: conf{soak: "1h"},
			end: end{stopped: true, failed: clients, why: whyStopped},
			steps: func(f *fault) {
				f.toStep("soaking")
				out, code := f.baton("stop", "--socket", f.path("baton.sock"), "--wait")
				if code != 0 || !strings.Contains(out, "stopped") {
					f.t.Errorf("stop --wait = %d %q", code, out)
				}
			}},
	}
}

// pidFileCases: a symlink planted at baton.pid or baton.pid.oldbin, pointing elsewhere;
// baton replaces or ignores it and never writes through it.
func pidFileCases() []faultCase {
	return []faultCase{
		{name: "pidfile-symlink-at-start", kind: "pidfile", end: end{gen: 1},
			prepare: func(f *fault) {
				target, _ := f.victim()
				f.plant("baton.pid", target)
			},
			steps: func(f *fault) {
				f.untouched()
				if fi, err := os.Lstat(f.path("baton.pid")); err != nil || !fi.Mode().IsRegular() {
					f.t.Errorf("baton.pid is not a regular file: %v", err)
				}
			}},
		{name: "pidfile-symlink-oldbin-commit", kind: "pidfile", fast: true, conf: conf{soak: "1h"}, end: end{gen: 2},
			steps: func(f *fault) {
				target, untouched := f.victim()
				f.plant("baton.pid.oldbin", target)
				o, _, _ := f.toStep("soaking") // checks that .oldbin names O
				f.signal(o, syscall.SIGQUIT)
				f.gone(o)
				untouched()
			}},
		{name: "pidfile-symlink-oldbin-rollback", kind: "pidfile", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				target, untouched := f.victim()
				f.plant("baton.pid.oldbin", target)
				f.signal(n, syscall.SIGQUIT)
				f.wait(`msg="upgrade rolled back`, o)
				f.gone(n)
				untouched()
				f.isSymlink("baton.pid.oldbin") // not baton's: left alone
			}},
		{name: "pidfile-symlink-pid-upgrade", kind: "pidfile", end: end{gen: 2},
			steps: func(f *fault) {
				target, untouched := f.victim()
				f.plant("baton.pid", target)
				o := f.first
				f.usr2(o)
				f.wait(`msg="upgrade: pid file not moved aside"`, o)
				f.gone(o)
				untouched()
			}},
		{name: "pidfile-symlink-pid-rollback", kind: "pidfile", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				o, n, _ := f.toStep("soaking")
				target, untouched := f.victim()
				f.plant("baton.pid", target)
				f.signal(n, syscall.SIGQUIT)
				f.wait(`msg="upgrade rolled back`, o)
				f.gone(n)
				untouched()
			}},
		{name: "pidfile-symlink-pid-stop", kind: "pidfile", end: end{stopped: true, failed: clients, why: whyStopped},
			steps: func(f *fault) {
				target, untouched := f.victim()
				f.plant("baton.pid", target)
				f.signal(f.first, syscall.SIGQUIT)
				f.waitExit(30 * time.Second)
				untouched()
				f.isSymlink("baton.pid") // not baton's: left alone
			}},
	}
}

// isSymlink checks that name in the service directory is (still) a symlink.
func (f *fault) isSymlink(name string) {
	f.t.Helper()
	if fi, err := os.Lstat(f.path(name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		f.t.Errorf("%s is no longer the symlink planted there (%v)", name, err)
	}
}

// configCases: a bad config on HUP, a config the new master rejects, a broken new binary;
// the old generation serves on.
func configCases() []faultCase {
	hup := func(name, why string, write func(f *fault)) faultCase {
		return faultCase{name: "hup-" + name, kind: "config", fast: name == "syntax-error", end: end{gen: 1},
			steps: func(f *fault) {
				write(f)
				if l := f.hup(f.first); !strings.Contains(l, "reload failed") || !strings.Contains(l, why) {
					f.t.Errorf("reload: %s; want it failed, naming %q", l, why)
				}
			}}
	}
	usr2 := func(name, why string, prepare func(f *fault)) faultCase {
		return faultCase{name: "usr2-" + name, kind: "config", fast: name == "binary-garbage", conf: conf{timeout: "2s"}, end: end{gen: 1},
			steps: func(f *fault) {
				prepare(f)
				o := f.first
				f.signal(o, syscall.SIGUSR2)
				f.waitLog(why, 1)
				f.wait(`msg="upgrade (failed|rolled back)`, o)
				waitFor(f.t, 20*time.Second, func() bool { return f.pidOf("baton.pid") == o }, "baton.pid to name the old master")
			}}
	}
	missing := func(f *fault) string {
		return strings.Replace(f.render(conf{}), bin.hello, "/nonexistent/hello", 1)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	// busy stays open for the test binary's life: the port a config below cannot listen on.
	return []faultCase{
		hup("syntax-error", "baton.toml:1", func(f *fault) { f.write(conf{raw: "this is not toml"}) }),
		hup("invalid-value", "worker.count", func(f *fault) {
			f.write(conf{raw: strings.Replace(f.render(conf{}), "count = 2", "count = -1", 1)})
		}),
		hup("missing-binary", "worker.command", func(f *fault) { f.write(conf{raw: missing(f)}) }),
		hup("unknown-user", "worker.user", func(f *fault) { f.write(conf{worker: `user = "no-such-user"`}) }),
		hup("address-in-use", "address already in use", func(f *fault) {
			f.write(conf{raw: f.render(conf{}) + fmt.Sprintf("\n[[listen]]\nname = \"busy\"\naddress = %q\n", busy.Addr().String())})
		}),
		usr2("config-rejected", `bad config|worker.count`, func(f *fault) {
			f.write(conf{raw: strings.Replace(f.render(conf{}), "count = 2", "count = -1", 1)})
		}),
		usr2("config-missing-binary", `worker.command`, func(f *fault) { f.write(conf{raw: missing(f)}) }),
		usr2("binary-exits-1", `msg="upgrade rolled back`, func(f *fault) { f.installBytes([]byte("#!/bin/sh\nexit 1\n"), 0o755) }),
		usr2("binary-not-executable", "permission denied", func(f *fault) { os.Chmod(f.path("bin/baton"), 0o644) }),
		usr2("binary-garbage", "exec format error", func(f *fault) {
			f.installBytes([]byte("\x7fELF garbage \x00\x01\x02\x03 not a program"), 0o755)
		}),
		usr2("binary-missing", "no such file or directory", func(f *fault) { os.Remove(f.path("bin/baton")) }),
		usr2("binary-hangs", "not ready within 2s", func(f *fault) { f.installBytes([]byte("#!/bin/sh\nexec sleep 600\n"), 0o755) }),
		withKeepAlive(usr2("config-rejected", `bad config|worker.count`, func(f *fault) {
			f.write(conf{raw: strings.Replace(f.render(conf{}), "count = 2", "count = -1", 1)})
		})),
	}
}

// nofileCases: the master's RLIMIT_NOFILE lowered to what it has open (prlimit), then a
// reload, an upgrade, a control request: each fails with a clear error and loses nothing;
// with the limit restored the same succeeds.
func nofileCases() []faultCase {
	squeeze := func(f *fault) (restore func()) {
		fds, _ := fdsOf(f.first)
		old := setNofile(f.t, f.first, uint64(len(fds)))
		return func() { setNofile(f.t, f.first, old) }
	}
	return []faultCase{
		{name: "nofile-reload", kind: "fds", fast: true, end: end{gen: 1},
			steps: func(f *fault) {
				// With 0, 1, 2... fds to spare, until one is enough: each reload fails with
				// the reason, or completes.
				fds, _ := fdsOf(f.first)
				old := setNofile(f.t, f.first, uint64(len(fds)))
				for spare := 0; ; spare++ {
					setNofile(f.t, f.first, uint64(len(fds)+spare))
					l := f.hup(f.first)
					if strings.Contains(l, "reload complete") {
						break
					}
					if !strings.Contains(l, "too many open files") || spare == 20 {
						f.t.Fatalf("reload with %d fds to spare: %s", spare, l)
					}
				}
				setNofile(f.t, f.first, old)
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("reload with fds again: %s", l)
				}
			}},
		{name: "nofile-reload-many-workers", kind: "fds", end: end{gen: 1},
			steps: func(f *fault) {
				fds, _ := fdsOf(f.first)
				old := setNofile(f.t, f.first, uint64(len(fds)+8)) // some workers start, not 20
				f.write(conf{count: 20})
				if l := f.hup(f.first); !strings.Contains(l, "reload failed") {
					f.t.Errorf("reload to 20 workers with 8 fds to spare: %s", l)
				}
				setNofile(f.t, f.first, old)
				f.write(conf{})
			}},
		{name: "nofile-upgrade", kind: "fds", end: end{gen: 2},
			steps: func(f *fault) {
				o := f.first
				fds, _ := fdsOf(o)
				old := setNofile(f.t, o, uint64(len(fds)))
				for spare := 0; spare < 4; spare++ { // every step of the start of an upgrade fails in turn
					setNofile(f.t, o, uint64(len(fds)+spare))
					n := f.lines(`msg="upgrade failed; this master stays in charge"`, o)
					f.signal(o, syscall.SIGUSR2)
					waitFor(f.t, 20*time.Second, func() bool {
						return f.lines(`msg="upgrade failed; this master stays in charge".*too many open files`, o) > n
					}, "the upgrade with %d fds to spare to fail", spare)
					f.pidFiles(o, 0)
				}
				setNofile(f.t, o, old)
				n := f.usr2(o)
				f.ready(o, n)
				f.gone(o)
			}},
		{name: "nofile-control", kind: "fds", end: end{gen: 1},
			steps: func(f *fault) {
				restore := squeeze(f)
				f.statusOf() // may fail: no fd to accept it with
				restore()
				if _, err := f.statusOf(); err != nil {
					f.t.Errorf("status with fds again: %v", err)
				}
			}},
	}
}

// probationCases: a new generation on trial (reload.soak, the soak of an upgrade, the
// [health] check) fails, or passes, under load; a failure leaves the old generation serving.
func probationCases() []faultCase {
	// trial starts a reload to next and waits until its new workers are on trial.
	trial := func(f *fault, next conf) {
		f.write(next)
		f.signal(f.first, syscall.SIGHUP)
		f.wait(`msg="probation: the reload's new workers are on trial"`, f.first)
	}
	// reloadFails checks that the reload in flight ends failed with reason.
	reloadFails := func(f *fault, reason string) {
		f.t.Helper()
		var got []string
		waitFor(f.t, 20*time.Second, func() bool { got = f.reloads(f.first); return len(got) > 0 }, "the reload to end")
		if l := got[len(got)-1]; !strings.Contains(l, "reload failed") || !strings.Contains(l, reason) {
			f.t.Errorf("the reload did not fail with %q: %s", reason, l)
		}
	}
	// script writes an executable shell script into the service directory.
	script := func(f *fault, name, body string) string {
		path := f.path(name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			f.t.Fatal(err)
		}
		return path
	}
	failing := func(f *fault) string {
		return fmt.Sprintf("check = [%q]\ncheck_interval = \"50ms\"\ncheck_failures = 2", script(f, "down.sh", "echo checking; echo backend down; exit 1"))
	}
	const downReason = "health check failed 2 time(s) in a row: exit status 1: backend down"
	return []faultCase{
		{name: "reload-probation-worker-exits", kind: "probation", fast: true, end: end{gen: 1},
			steps: func(f *fault) {
				trial(f, conf{mode: "ready-exit", slot: 2, gate: "crash", reloadSoak: "1h"})
				f.open("crash")
				reloadFails(f, "new worker 2 (pid ")
				reloadFails(f, "exit status 0 during probation")
			}},
		{name: "reload-probation-errno", kind: "probation", end: end{gen: 1},
			steps: func(f *fault) {
				trial(f, conf{mode: "errno", slot: 2, gate: "errno", reloadSoak: "1h"})
				f.open("errno")
				reloadFails(f, "reported ERRNO=111: db down during probation")
			}},
		{name: "reload-check-fails", kind: "probation", end: end{gen: 1},
			steps: func(f *fault) {
				f.write(conf{reloadSoak: "1h", health: failing(f)})
				if l := f.hup(f.first); !strings.Contains(l, "reload failed") || !strings.Contains(l, downReason) {
					f.t.Errorf("the reload did not fail with %q: %s", downReason, l)
				}
			}},
		{name: "reload-check-passes", kind: "probation", end: end{gen: 1},
			steps: func(f *fault) {
				// The check sees its generation, its master (its parent) and the new workers.
				ok := script(f, "ok.sh", `[ "$BATON_GENERATION" = 1 ] && [ "$BATON_MASTER_PID" = "$PPID" ] || exit 1
n=0; for p in $BATON_WORKER_PIDS; do [ -d /proc/$p ] || exit 2; n=$((n+1)); done; [ $n = 2 ] || exit 3`)
				f.write(conf{reloadSoak: "300ms", health: fmt.Sprintf("check = [%q]\ncheck_interval = \"100ms\"", ok)})
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("the reload with a passing check: %s", l)
				}
				if got := f.linesOf(f.first, `msg="health check failed"`); len(got) > 0 {
					f.t.Errorf("the check failed: %s", got[0])
				}
			}},
		{name: "upgrade-check-fails", kind: "probation", fast: true, conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				f.write(conf{soak: "1h", health: failing(f)})
				o := f.first
				n := f.usr2(o)
				f.wait(`msg="upgrade rolled back`, o, `reason="`+regexp.QuoteMeta(downReason)+`"`)
				f.gone(n)
			}},
		{name: "upgrade-check-timeout", kind: "probation", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				// The check, and what it started, are killed at check_timeout: nothing of it
				// is left (the runner checks the master's children).
				f.write(conf{soak: "1h", health: `check = ["/bin/sh", "-c", "sleep 60 & sleep 60"]
check_timeout = "200ms"
check_failures = 1`})
				o := f.first
				n := f.usr2(o)
				f.wait(`msg="upgrade rolled back`, o, `reason="health check failed 1 time\(s\) in a row: timed out after 200ms"`)
				f.gone(n)
			}},
		{name: "upgrade-probation-errno", kind: "probation", conf: conf{soak: "1h"}, end: end{gen: 1},
			steps: func(f *fault) {
				f.write(conf{soak: "1h", mode: "errno", slot: 2, gate: "errno"})
				o := f.first
				n := f.usr2(o)
				f.ready(o, n)
				f.open("errno")
				f.wait(`msg="upgrade rolled back`, o, `reason="worker 2 \(pid \d+\) reported ERRNO=111: db down during probation"`)
				f.gone(n)
			}},
		{name: "upgrade-check-passes", kind: "probation", end: end{gen: 2},
			steps: func(f *fault) {
				ok := script(f, "ok.sh", `[ "$BATON_GENERATION" = 2 ] && [ "$BATON_MASTER_PID" = "$PPID" ]`)
				f.write(conf{health: fmt.Sprintf("check = [%q]", ok)})
				f.usr2(f.first)
				f.gone(f.first)
			}},
	}
}

// rollingCases: reloads with [rollout] strategy = "rolling", under load: the old workers
// retire batch by batch, and a failure mid-way brings the replaced ones back before the
// new ones retire.
func rollingCases() []faultCase {
	const rolling = "strategy = \"rolling\"\nsurge = 1"
	return []faultCase{
		{name: "reload-rolling", kind: "rolling", fast: true, conf: conf{count: 4, rollout: rolling}, end: end{gen: 1, count: 4},
			steps: func(f *fault) {
				f.write(conf{count: 4, rollout: rolling})
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("rolling reload: %s", l)
				}
				batches := f.linesOf(f.first, `msg="reload: starting a batch of new workers"`)
				retired := f.linesOf(f.first, `msg="reload: old workers retire for the new ones"`)
				if len(batches) != 4 || len(retired) != 4 {
					f.t.Errorf("4 workers, surge 1: %d batches started, %d retirements, want 4 and 4", len(batches), len(retired))
				}
			}},
		{name: "reload-rolling-canary-keep-alive", kind: "rolling", load: keepAlive, conf: conf{count: 4}, end: end{gen: 1, count: 4},
			steps: func(f *fault) {
				f.write(conf{count: 4, reloadSoak: "300ms", rollout: "strategy = \"rolling\"\nsurge = 2\ncanary = 1"})
				if l := f.hup(f.first); !strings.Contains(l, "reload complete") {
					f.t.Errorf("rolling reload with a canary: %s", l)
				}
				if len(f.linesOf(f.first, `msg="reload: the canary is ready; probation before the rest"`)) != 1 {
					f.t.Errorf("no canary probation")
				}
			}},
		{name: "reload-rolling-fails-midway", kind: "rolling", conf: conf{count: 4}, end: end{gen: 1, count: 4},
			steps: func(f *fault) {
				// New worker 3 exits right after READY=1 (its old worker 3 has just retired
				// for it), once workers 1 and 2 replaced theirs: the old workers 1, 2 and 3
				// start again, the new ones serve until they are ready, then retire.
				f.write(conf{count: 4, mode: "ready-exit", slot: 3, rollout: rolling})
				l := f.hup(f.first)
				if !strings.Contains(l, "reload failed") || !strings.Contains(l, "new worker 3") {
					f.t.Errorf("rolling reload with a failing worker 3: %s", l)
				}
				f.wait(`msg="rolling reload failed; the old workers it replaced start again`, f.first, `slots="\[1 2 3\]"`)
			}},
	}
}

// rollingUpgradeCases: upgrades with [rollout] strategy = "rolling": the new master starts
// its workers in batches as the old master retires its own, under load.
func rollingUpgradeCases() []faultCase {
	const rolling = "strategy = \"rolling\"\nsurge = 1"
	return []faultCase{
		{name: "upgrade-rolling", kind: "rolling", fast: true, conf: conf{count: 4, rollout: rolling}, end: end{gen: 2, count: 4},
			steps: func(f *fault) {
				o := f.first
				n := f.usr2(o)
				f.gone(o)
				if got := len(f.linesOf(n, `msg="rolling upgrade: starting a batch of workers"`)); got != 4 {
					f.t.Errorf("4 workers, surge 1: the new master started %d batches, want 4", got)
				}
				// The last batch's old worker retires with the commit.
				if got := len(f.linesOf(o, `msg="rolling upgrade: old workers retire for the new master's"`)); got != 3 {
					f.t.Errorf("the old master retired %d workers for the new master's batches, want 3", got)
				}
			}},
		{name: "upgrade-rolling-fails-midway", kind: "rolling", conf: conf{count: 4, rollout: rolling}, end: end{gen: 1, count: 4},
			steps: func(f *fault) {
				// N's worker 3 exits right after READY=1: N reports it and serves on; O
				// starts its retired workers again and asks N to stop once they are ready.
				f.write(conf{count: 4, mode: "ready-exit", slot: 3, rollout: rolling})
				o := f.first
				n := f.usr2(o)
				f.wait(`msg="serving on until the old master has its workers back"`, n)
				f.wait(`msg="upgrade rolled back`, o, `reason="worker 3 \(pid \d+\) exit status 0`)
				f.gone(n)
			}},
	}
}
