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

// (h) The watchdog: a master whose loop is wedged (test switch BATON_TEST_WEDGE=1 makes
// USR1 block it) stops pinging, and systemd kills and restarts it.
func TestWatchdogRestartsWedgedMaster(t *testing.T) {
	in := newInstance(t, roleSocket, "h", 18112)
	in.serviceDropIn("WatchdogSec=2", "Restart=on-failure", "RestartSec=1", "Environment=BATON_TEST_WEDGE=1")
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	in.waitWorkers(c0, master, 2)

	// A healthy master pings: the last ping's time moves.
	first := show(t, in.Name, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
	waitFor(t, 10*time.Second, "a watchdog ping", func() (bool, string) {
		now := show(t, in.Name, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
		return now != first && now != "0", now
	})
	if n := showInt(t, in.Name, "NRestarts"); n != 0 {
		t.Fatalf("NRestarts = %d before the wedge", n)
	}

	c1 := cursor(t)
	run(t, "systemctl", "kill", "--kill-whom=main", "-s", "USR1", in.Name)
	waitFor(t, 30*time.Second, "a restart after the watchdog fired", func() (bool, string) {
		st := show(t, in.Name, "NRestarts", "ActiveState", "MainPID")
		return st["NRestarts"] == "1" && st["ActiveState"] == "active" && st["MainPID"] != fmt.Sprint(master), fmt.Sprint(st)
	})
	es := journal(t, in.Name, c1)
	if len(containing(es, "BATON_TEST_WEDGE")) == 0 {
		t.Errorf("the master did not log that it wedged itself")
	}
	if len(containing(es, "Watchdog timeout")) == 0 {
		t.Errorf("no \"Watchdog timeout\" in the journal")
	}
	if alive(t, master) {
		t.Errorf("the wedged master %d still runs", master)
	}
	master2 := in.mainPID()
	workers2 := in.waitWorkers(c1, master2, 2)
	r := mustServe(t, in.HTTP, 4)
	for pid := range r.servedBy() {
		if !slices.Contains(workers2, pid) {
			t.Errorf("answered by %d, want a worker of the restarted master %v", pid, workers2)
		}
	}
}

// waitPings waits until systemd has taken n more watchdog pings of unit (its
// WatchdogTimestampMonotonic moved n times), what saying when.
func waitPings(t testing.TB, unit string, n int, what string) {
	t.Helper()
	const prop = "WatchdogTimestampMonotonic"
	last := show(t, unit, prop)[prop]
	seen := 0
	waitFor(t, time.Duration(n)*2*time.Second+5*time.Second, fmt.Sprintf("%d watchdog pings of %s %s", n, unit, what), func() (bool, string) {
		if now := show(t, unit, prop)[prop]; now != last && now != "0" {
			seen, last = seen+1, now
		}
		return seen >= n, fmt.Sprintf("%d pings", seen)
	})
}

// noWatchdogTimeout fails the test if systemd logged a watchdog timeout of the unit
// after the cursor.
func noWatchdogTimeout(t testing.TB, unit, after string) {
	t.Helper()
	for _, e := range containing(journal(t, unit, after), "Watchdog timeout") {
		t.Errorf("journal: %s", e)
	}
}

// The watchdog through a long upgrade, under load: WatchdogSec=2, commit = "manual". The
// old master pings while the new master waits for its commit (6 pings: 3 periods) and
// while its commit waits for an old worker held with SIGSTOP (4 pings), then the new
// master pings once in charge. No watchdog timeout, NRestarts=0, MainPID the old master
// then the new one, active in every sample, 0 failed requests.
func TestWatchdogDuringUpgrade(t *testing.T) {
	in := newInstance(t, roleSocket, "wu", 18134)
	in.serviceDropIn("WatchdogSec=2")
	in.conf.Commit = "manual"
	c0 := cursor(t)
	in.start()
	old := in.mainPID()
	oldWorkers := in.waitWorkers(c0, old, 2)
	load := startLoad(t, in.HTTP, 4)
	load.waitLine(t, 10*time.Second, "answers from the old workers", servedByBodyOf(oldWorkers))
	s := sample(in.Name, "MainPID", "ActiveState", "NRestarts")

	newPID, newWorkers := in.upgradeReady(c0, old)
	waitPings(t, in.Name, 6, "while the new master waits for its commit")
	// The commit waits for this worker's exit; the kill timer (stop_timeout, 10 s) is
	// longer than the 4 pings.
	held := oldWorkers[0]
	signal(t, "STOP", held)
	c1 := cursor(t)
	signal(t, "QUIT", old)
	waitJournal(t, 10*time.Second, in.Name, c1, "the old master commits", func(es []entry) bool {
		return slices.ContainsFunc(withMsg(es, "committing the upgrade: old workers drain"), func(e entry) bool { return e.AttrInt("pid") == old })
	})
	waitPings(t, in.Name, 4, "while the old master commits")
	if !alive(t, old) {
		t.Fatalf("the old master %d exited while its worker %d was held: the pings were not during the commit", old, held)
	}
	signal(t, "CONT", held)
	in.waitMainPID(newPID)
	waitPings(t, in.Name, 3, "from the new master")

	load.waitLine(t, 10*time.Second, "answers from the new workers", servedByBodyOf(newWorkers))
	load.stopNoFailures(t, "requests across the upgrade")
	last := old
	for _, m := range s.finish() {
		if m["ActiveState"] != "active" || m["NRestarts"] != "0" {
			t.Errorf("the unit left active (or restarted): %v", m)
		}
		switch pid, _ := strconv.Atoi(m["MainPID"]); {
		case pid == newPID:
			last = newPID
		case pid == old && last == old:
		default:
			t.Errorf("MainPID went %d -> %s; want %d then %d only", last, m["MainPID"], old, newPID)
		}
	}
	noWatchdogTimeout(t, in.Name, c0)
}

// A flood of datagrams on the master's worker notify socket (its address read from a
// worker's environment) from flood, run in the lab as root: STATUS= as a process that is
// not a worker, STATUS= with a worker's credentials, and malformed datagrams, as fast as
// the master reads them. With WatchdogSec=2 and under load: the master's pings go on
// (6 seen during the flood, no watchdog timeout, NRestarts=0); a reload meanwhile (2 → 3
// workers) exits 0, so the new workers' READY=1 got through the flood, and systemd's
// StatusText says so (STATUS= reaches systemd); the master logs the dropped datagrams at
// most once per 10 s per kind; 0 failed requests.
func TestNotifyFlood(t *testing.T) {
	in := newInstance(t, roleSocket, "nf", 18135)
	in.serviceDropIn("WatchdogSec=2")
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	workers := in.waitWorkers(c0, master, 2)
	load := startLoad(t, in.HTTP, 4)
	load.waitLine(t, 10*time.Second, "answers from the workers", servedByBodyOf(workers))
	var addr string
	for _, kv := range strings.Split(run(t, "sh", "-c", `tr '\0' '\n' </proc/$1/environ`, "sh", strconv.Itoa(workers[0])), "\n") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			addr = v
		}
	}
	if addr == "" {
		t.Fatalf("worker %d has no NOTIFY_SOCKET", workers[0])
	}
	if strings.HasPrefix(addr, "/") {
		// In the unit's private /tmp (PrivateTmp=yes): reached through the root of the
		// master, which outlives the workers a reload replaces.
		addr = fmt.Sprintf("/proc/%d/root%s", master, addr)
	}

	c1 := cursor(t)
	t0 := time.Now()
	flood := startProgram(t, "flood", "-socket", addr, "-as", strconv.Itoa(workers[0]), "-until", stopArg)
	dropped := map[string]string{ // kind → the master's (rate-limited) line
		"stranger":  "notify message from a process that is not a worker dropped",
		"malformed": "malformed notify datagram dropped",
	}
	checks := map[string]func(entry) bool{}
	for kind, msg := range dropped {
		checks["the master drops the "+kind+" datagrams"] = func(e entry) bool { return e.AttrInt("pid") == master && e.Msg() == msg }
	}
	waitLines(t, 10*time.Second, in.Name, c1, checks)
	waitPings(t, in.Name, 6, "during the flood")

	c := in.conf
	c.Workers = 3
	in.writeConfig(c)
	t1 := time.Now()
	if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
		t.Errorf("systemctl reload during the flood: exit %d: %s", rc, errOut)
	}
	t.Logf("systemctl reload during the flood took %s", time.Since(t1).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "STATUS= of the reload reaches systemd", func() (bool, string) {
		st := show(t, in.Name, "StatusText")["StatusText"]
		return strings.HasPrefix(st, "generation 1: 3/3 workers ready"), st
	})
	waitPings(t, in.Name, 2, "after the reload, during the flood")

	flood.end(t)
	var fr struct {
		Sent   int            `json:"sent"`
		Errors map[string]int `json:"errors"`
	}
	flood.summary(t, 30*time.Second, &fr)
	took := time.Since(t0)
	t.Logf("flood: %d datagrams in %s (%.0f/s); send errors %v", fr.Sent, took.Round(time.Millisecond), float64(fr.Sent)/took.Seconds(), fr.Errors)
	if fr.Sent == 0 {
		t.Errorf("flood sent nothing: %v", fr.Errors)
	}
	load.stopNoFailures(t, "requests during the flood")
	if st := show(t, in.Name, "MainPID", "ActiveState", "NRestarts"); st["MainPID"] != strconv.Itoa(master) || st["ActiveState"] != "active" || st["NRestarts"] != "0" {
		t.Errorf("after the flood: %v; want MainPID=%d active, NRestarts=0", st, master)
	}
	noWatchdogTimeout(t, in.Name, c0)
	es := journal(t, in.Name, c1)
	for kind, msg := range dropped {
		n := len(filter(withMsg(es, msg), func(e entry) bool { return e.AttrInt("pid") == master }))
		if max := int(took/(10*time.Second)) + 1; n > max {
			t.Errorf("the master logged %d lines for the %s datagrams in %s: more than once per 10 s", n, kind, took.Round(time.Millisecond))
		}
	}
}
