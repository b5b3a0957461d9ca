//go:build lab && linux

package labtest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// [worker] watchdog under systemd (issue 12). The unit's WatchdogSec=2 is the master's own:
// its workers get baton's watchdog instead (watchdog = "1s": WATCHDOG_USEC=1000000 and
// WATCHDOG_PID their own pid), never systemd's. A worker held with SIGSTOP misses its pings:
// its master stops it (TERM, then SIGCONT: it wakes, drains, exits) and restarts it, while
// the unit stays active with the same MainPID and NRestarts=0, the master's own pings go on
// and no request fails.
func TestWorkerWatchdog(t *testing.T) {
	in := newInstance(t, roleSocket, "ww", 18180)
	in.serviceDropIn("WatchdogSec=2")
	in.conf.Worker = `watchdog = "1s"`
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	workers := in.waitWorkers(c0, master, 2)
	if got := environ(t, master)["WATCHDOG_USEC"]; got != "2000000" {
		t.Fatalf("master %d: WATCHDOG_USEC=%q, want systemd's 2000000 (WatchdogSec=2)", master, got)
	}
	for _, w := range workers {
		env := environ(t, w)
		if env["WATCHDOG_USEC"] != "1000000" || env["WATCHDOG_PID"] != strconv.Itoa(w) {
			t.Fatalf("worker %d: WATCHDOG_USEC=%q WATCHDOG_PID=%q, want baton's 1000000 and its own pid", w, env["WATCHDOG_USEC"], env["WATCHDOG_PID"])
		}
	}
	load := startLoad(t, in.HTTP, 4)
	load.waitLine(t, 10*time.Second, "answers from the workers", servedByBodyOf(workers))
	s := sample(in.Name, "MainPID", "ActiveState", "NRestarts")

	held := workers[0]
	c1 := cursor(t)
	signal(t, "STOP", held)
	byHeld := func(msg string) func([]entry) bool {
		return func(es []entry) bool {
			return slices.ContainsFunc(withMsg(es, msg), func(e entry) bool {
				return e.AttrInt("pid") == master && (e.AttrInt("worker_pid") == held || strings.Contains(e.Attr("how"), fmt.Sprintf("(pid %d) watchdog timeout", held)))
			})
		}
	}
	waitJournal(t, 10*time.Second, in.Name, c1, "the master stops the worker that stopped pinging", byHeld("worker watchdog: stopping it"))
	waitJournal(t, 10*time.Second, in.Name, c1, "the master restarts it", byHeld("worker failed; restarting"))
	restarted := in.waitWorkers(c1, master, 1)
	if alive(t, held) {
		t.Errorf("the worker held with SIGSTOP (%d) still runs", held)
	}
	if es := journal(t, in.Name, c1); slices.ContainsFunc(withMsg(es, "worker did not stop in time; killing it"), func(e entry) bool { return e.AttrInt("worker_pid") == held }) {
		t.Errorf("the held worker was killed, not woken by SIGCONT to drain")
	}
	waitPings(t, in.Name, 2, "after the worker's restart")
	load.waitLine(t, 10*time.Second, "answers from the restarted worker", servedByBodyOf(restarted))
	load.stopNoFailures(t, "requests while a worker was held and restarted")
	for _, m := range s.finish() {
		if m["ActiveState"] != "active" || m["NRestarts"] != "0" || m["MainPID"] != strconv.Itoa(master) {
			t.Errorf("the unit left active, restarted or changed its main process: %v", m)
		}
	}
	noWatchdogTimeout(t, in.Name, c0)
}

// environ reads pid's environment inside the lab.
func environ(t testing.TB, pid int) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range strings.Split(run(t, "sh", "-c", `tr '\0' '\n' </proc/$1/environ`, "sh", strconv.Itoa(pid)), "\n") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
