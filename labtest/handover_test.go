//go:build lab && linux

package labtest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A master killed or held at a step of the hand-over, under load (4 clients). The steps
// last milliseconds; the tests hold a process there: SIGSTOP of a master, the new
// master's workers waiting at a gate file, or systemd itself frozen (the cgroup freezer of
// the lab's PID 1), which reads nothing from its notify socket and answers no D-Bus call
// meanwhile. TestKillOldMasterBeforeCommit covers kill -9 of the old master while the new
// one waits for its commit.
//
//   - new master killed after MAINPID=: the new master (N) is stopped before the old
//     master (O) commits, so it never learns of the commit; once systemd's MainPID is N
//     and O is gone, kill -9 of N. systemd takes it for the service's death: with the
//     units' Restart=on-failure it kills what is left and starts the service again
//     (NRestarts=1, a new generation 1 answers; requests in flight on N's killed workers
//     fail, at most one per client); with Restart=no the unit fails (Result=signal) and
//     nothing of it is left.
//   - old master killed while the new workers start: N's workers wait at a gate, kill -9
//     of O: N asks systemd (D-Bus) until it is main (PIDFile=), takes charge, and serves
//     once the gate opens; the unit stays active, NRestarts=0, 0 failed requests.
//   - hand-over barrier times out: systemd frozen before O commits. O sends MAINPID=N
//     (queued), its BARRIER=1 gets no answer for 5 s, it asks systemd over D-Bus which
//     process is main, systemd is thawed then and answers N (it reads the queued MAINPID=
//     first): O takes N to be in charge and exits, N takes charge; 0 failed requests.
//   - old master stopped during the hand-over: systemd frozen, O commits and sends
//     MAINPID=N, then SIGSTOP of O and systemd thawed: MainPID is N while O, stopped,
//     has not told N; N's workers serve. SIGCONT: O finds its barrier answered, commits
//     and exits; N takes charge; 0 failed requests.
func TestKillMainMidUpgrade(t *testing.T) {
	t.Run("new master killed after MAINPID=", func(t *testing.T) {
		for i, restart := range []string{"on-failure", "no"} {
			t.Run("Restart="+restart, func(t *testing.T) { killNewAfterMainPID(t, restart, 18140+i) })
		}
	})
	t.Run("old master killed while the new workers start", killOldWhileNewStart)
	t.Run("hand-over barrier times out", barrierTimesOut)
	t.Run("old master stopped during the hand-over", stopOldDuringHandOver)
}

// upgrading is a service under load with an upgrade of its own about to start.
type upgrading struct {
	*instance
	c0         string // the cursor before the start
	old        int
	oldWorkers []int
	load       *probeRun
}

// startUpgrading starts in (commit = "manual") and a load of 4 clients, answered by its
// workers.
func startUpgrading(t *testing.T, in *instance) *upgrading {
	t.Helper()
	in.conf.Commit = "manual"
	u := &upgrading{instance: in, c0: cursor(t)}
	in.start()
	u.old = in.mainPID()
	u.oldWorkers = in.waitWorkers(u.c0, u.old, 2)
	u.load = startLoad(t, in.HTTP, 4)
	u.load.waitLine(t, 10*time.Second, "answers from the old workers", servedByBodyOf(u.oldWorkers))
	return u
}

// newInCharge checks the end of an upgrade that went through, whatever happened on the
// way: MainPID is the new master, nothing of the old generation is left, STATUS= is the
// new master's, only its workers answer, no request failed, and systemd never took the
// service for dead (after the cursor).
func (u *upgrading) newInCharge(t *testing.T, after string, newPID int, newWorkers []int) {
	t.Helper()
	u.waitMainPID(newPID)
	waitGone(t, 15*time.Second, append([]int{u.old}, u.oldWorkers...)...)
	waitFor(t, 10*time.Second, "STATUS= from the new master", func() (bool, string) {
		st := show(t, u.Name, "StatusText")["StatusText"]
		return strings.HasPrefix(st, "generation 2: 2/2 workers ready") && !strings.Contains(st, "upgrade"), st
	})
	u.load.waitLine(t, 10*time.Second, "answers from the new workers", servedByBodyOf(newWorkers))
	u.load.stopNoFailures(t, "requests")
	servedOnlyBy(t, u.HTTP, newWorkers)
	if st := show(t, u.Name, "ActiveState", "SubState", "Result", "NRestarts"); st["ActiveState"] != "active" || st["Result"] != "success" || st["NRestarts"] != "0" {
		t.Errorf("after the hand-over: %v; want active, Result=success, NRestarts=0", st)
	}
	es := journal(t, u.Name, after)
	for _, s := range []string{"Main process exited", "Failed with result", "Scheduled restart"} {
		for _, e := range containing(es, s) {
			t.Errorf("systemd took the service for dead: %s", e)
		}
	}
}

// (kill -9 of N right after MAINPID=) systemd restarts the service, or not, per Restart=.
func killNewAfterMainPID(t *testing.T, restart string, port int) {
	in := newInstance(t, roleSocket, "km-"+strings.ReplaceAll(restart, "-", ""), port)
	in.serviceDropIn("Restart="+restart, "RestartSec=1")
	u := startUpgrading(t, in)
	newPID, newWorkers := in.upgradeReady(u.c0, u.old)

	signal(t, "STOP", newPID) // its workers go on serving
	signal(t, "QUIT", u.old)
	in.waitMainPID(newPID)
	waitGone(t, 15*time.Second, append([]int{u.old}, u.oldWorkers...)...)
	if p, _ := procOf(t, newPID); p.State != "T" {
		t.Fatalf("new master %d is in state %q, want T (stopped): it must not have heard of the commit", newPID, p.State)
	}
	if restart == "no" {
		// Nothing serves once the unit fails: the load ends here.
		if lr := u.load.stop(t); lr.Failed != 0 || lr.OK == 0 {
			t.Errorf("requests up to the kill: %d ok, %d failed: %v", lr.OK, lr.Failed, lr.Errors)
		}
	}

	c1 := cursor(t)
	signal(t, "KILL", newPID)
	if restart == "no" {
		waitState(t, 15*time.Second, in.Name, map[string]string{"ActiveState": "failed", "Result": "signal", "MainPID": "0"})
	} else {
		waitFor(t, 20*time.Second, "the service started again", func() (bool, string) {
			st := show(t, in.Name, "ActiveState", "MainPID", "NRestarts")
			m, _ := strconv.Atoi(st["MainPID"])
			return st["ActiveState"] == "active" && st["NRestarts"] == "1" && !slices.Contains([]int{0, u.old, newPID}, m), fmt.Sprint(st)
		})
	}
	waitGone(t, 15*time.Second, append([]int{newPID}, newWorkers...)...)
	es := journal(t, in.Name, c1)
	if len(containing(es, "Main process exited, code=killed, status=9/KILL")) == 0 {
		t.Errorf("systemd did not log the main process's death by SIGKILL")
	}
	if restart == "no" {
		if n := showInt(t, in.Name, "NRestarts"); n != 0 {
			t.Errorf("Restart=no, but NRestarts=%d", n)
		}
		return
	}
	m2 := in.mainPID()
	workers2 := in.waitWorkers(c1, m2, 2)
	u.load.waitLine(t, 20*time.Second, "answers from the restarted service", servedByBodyOf(workers2))
	lr := u.load.stop(t)
	t.Logf("requests across kill -9 of the new master: %d ok, %d failed %v", lr.OK, lr.Failed, lr.Errors)
	// SIGKILL (systemd's, once the main process died) cuts the requests in flight on the
	// new master's workers: at most one per client.
	if lr.Failed > 4 || lr.OK == 0 {
		t.Errorf("requests across kill -9 of the new master: %d ok, %d failed (at most 4): %v", lr.OK, lr.Failed, lr.Errors)
	}
	if g := mustServe(t, in.HTTP, 6).generations(); g[1] != 6 {
		t.Errorf("after the restart, answers by generation: %v; want all from a new generation 1", g)
	}
}

// (kill -9 of O while N's first workers start) N takes charge before it is ready.
func killOldWhileNewStart(t *testing.T) {
	in := newInstance(t, roleSocket, "kj", 18142)
	u := startUpgrading(t, in)
	// The new master reads the config on disk (the old one keeps its own): its workers
	// wait at a gate before they exec hello.
	gate := filepath.Join(lab.Dir, "gate-"+in.Inst)
	c := in.conf
	c.Command = []string{"/bin/sh", "-c", `while [ ! -e "$0" ]; do sleep 0.05; done; exec "$@"`, gate,
		filepath.Join(lab.Bin, "hello"), "-names", in.FDName, "-drain", "300ms"}
	in.writeConfig(c)
	s := sample(in.Name, "MainPID", "ActiveState", "NRestarts")
	signal(t, "USR2", u.old)
	newPID := in.newMaster(u.c0, u.old)
	waitJournal(t, 10*time.Second, in.Name, u.c0, "the new master's workers started", func(es []entry) bool {
		return len(filter(withMsg(es, "worker started"), func(e entry) bool { return e.AttrInt("pid") == newPID })) == 2
	})

	c1 := cursor(t)
	signal(t, "KILL", u.old)
	waitLines(t, 20*time.Second, in.Name, c1, map[string]func(entry) bool{
		"the new master learns it is main": func(e entry) bool {
			return e.Msg() == "systemd made this master its main process" && e.AttrInt("pid") == newPID
		},
		"the new master takes charge": func(e entry) bool {
			return strings.HasPrefix(e.Msg(), "the old master went away before it committed") && e.Attr("event") == "took-charge" && e.AttrInt("pid") == newPID
		},
	})
	if ready := filter(withMsg(journal(t, in.Name, u.c0), "worker ready"), func(e entry) bool { return e.AttrInt("pid") == newPID }); len(ready) != 0 {
		t.Fatalf("a worker of the new master was ready before the gate opened: %s", ready[0])
	}
	run(t, "touch", gate)
	newWorkers := in.waitWorkers(c1, newPID, 2)
	u.newInCharge(t, c1, newPID, newWorkers)
	last := u.old
	for _, m := range s.finish() {
		if m["ActiveState"] != "active" || m["NRestarts"] != "0" {
			t.Errorf("the unit left active (or restarted): %v", m)
		}
		switch pid, _ := strconv.Atoi(m["MainPID"]); {
		case pid == newPID:
			last = newPID
		case pid == u.old && last == u.old:
		default:
			t.Errorf("MainPID went %d -> %s; want %d then %d only", last, m["MainPID"], u.old, newPID)
		}
	}
}

// sockets counts the sockets among pid's open fds.
func sockets(t testing.TB, pid int) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(run(t, "sh", "-c", `find /proc/$1/fd -lname 'socket:*' | wc -l`, "sh", strconv.Itoa(pid))))
	if err != nil {
		t.Fatalf("sockets of %d: %v", pid, err)
	}
	return n
}

// handedOver waits for O's line that it sent MAINPID= naming N, and returns it.
func (u *upgrading) handedOver(t *testing.T, after string, newPID int) entry {
	t.Helper()
	var line entry
	waitJournal(t, 15*time.Second, u.Name, after, "the old master sends MAINPID=", func(es []entry) bool {
		for _, e := range withMsg(es, "main process handed to the new master") {
			if e.AttrInt("pid") == u.old && e.AttrInt("new_pid") == newPID {
				line = e
				return true
			}
		}
		return false
	})
	return line
}

// (O's BARRIER=1 unanswered) D-Bus MainPID decides: N is in charge, O exits.
func barrierTimesOut(t *testing.T) {
	in := newInstance(t, roleSocket, "kb", 18143)
	u := startUpgrading(t, in)
	newPID, newWorkers := in.upgradeReady(u.c0, u.old)

	c1 := cursor(t)
	thaw := freezePID1(t)
	signal(t, "QUIT", u.old)
	handed := u.handedOver(t, c1, newPID)
	// When the barrier gives up (5 s), O connects to systemd's D-Bus socket: a socket more.
	base := sockets(t, u.old)
	waitFor(t, 10*time.Second, "the old master asks systemd over D-Bus", func() (bool, string) {
		n := sockets(t, u.old)
		return n > base, fmt.Sprintf("%d sockets (%d before)", n, base)
	})
	thaw()
	usec, _ := strconv.ParseInt(handed.F["__REALTIME_TIMESTAMP"], 10, 64)
	t.Logf("the old master asked D-Bus %s after it sent MAINPID=; systemd thawed", time.Since(time.UnixMicro(usec)).Round(time.Millisecond))
	// O's last lines may be in no unit's journal.
	waitLines(t, 20*time.Second, "", c1, map[string]func(entry) bool{
		fmt.Sprintf("the old master takes systemd's MainPID %d for the answer", newPID): func(e entry) bool {
			return e.AttrInt("pid") == u.old && strings.HasPrefix(e.Msg(), "systemd did not confirm the hand-over") && e.AttrInt("main_pid") == newPID
		},
		"the old master commits and exits": func(e entry) bool {
			return e.AttrInt("pid") == u.old && e.Attr("event") == "upgrade-committed"
		},
		"the new master is in charge": func(e entry) bool {
			return e.AttrInt("pid") == newPID && e.Msg() == "upgrade committed: this master is in charge"
		},
	})
	u.newInCharge(t, c1, newPID, newWorkers)
}

// (SIGSTOP of O after MAINPID=, before its barrier returned) N in charge once O goes on.
func stopOldDuringHandOver(t *testing.T) {
	in := newInstance(t, roleSocket, "kst", 18144)
	u := startUpgrading(t, in)
	newPID, newWorkers := in.upgradeReady(u.c0, u.old)

	c1 := cursor(t)
	thaw := freezePID1(t)
	signal(t, "QUIT", u.old)
	u.handedOver(t, c1, newPID)
	signal(t, "STOP", u.old)
	thaw()
	in.waitMainPID(newPID) // systemd read MAINPID= (and the barrier) while O is stopped
	if p, _ := procOf(t, u.old); p.State != "T" {
		t.Fatalf("old master %d is in state %q, want T (stopped)", u.old, p.State)
	}
	if es := filter(journal(t, "", c1), func(e entry) bool {
		return e.AttrInt("pid") == newPID && strings.HasPrefix(e.Msg(), "upgrade committed")
	}); len(es) != 0 {
		t.Fatalf("the new master took charge while the old one was stopped before it told it: %s", es[0])
	}
	servedOnlyBy(t, in.HTTP, newWorkers) // O's workers drained before MAINPID=
	if st := show(t, in.Name, "ActiveState", "NRestarts"); st["ActiveState"] != "active" || st["NRestarts"] != "0" {
		t.Errorf("with the old master stopped after MAINPID=: %v, want active, NRestarts=0", st)
	}

	signal(t, "CONT", u.old)
	es := waitLines(t, 20*time.Second, "", c1, map[string]func(entry) bool{
		"the old master commits and exits": func(e entry) bool {
			return e.AttrInt("pid") == u.old && e.Attr("event") == "upgrade-committed"
		},
		"the new master is in charge": func(e entry) bool {
			return e.AttrInt("pid") == newPID && e.Msg() == "upgrade committed: this master is in charge"
		},
	})
	for _, e := range filter(es, func(e entry) bool { return e.AttrInt("pid") == u.old && strings.HasPrefix(e.Msg(), "systemd did not") }) {
		t.Errorf("the barrier was answered while the old master was stopped, yet: %s", e)
	}
	u.newInCharge(t, c1, newPID, newWorkers)
}
