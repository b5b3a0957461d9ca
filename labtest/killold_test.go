//go:build lab && linux

package labtest

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refusedFrom matches systemd's refusal of a notification (logged at warning level by 252
// and 254, at debug level only by 257).
var refusedFrom = regexp.MustCompile(`Got notification message from PID (\d+), but reception only permitted`)

// (issue 8) kill -9 of the OLD master while a ready new master waits for its commit, under
// load. The units' PIDFile= names the master in charge's pid file, which the new master
// wrote when it started: systemd, reaping the old master, reads it and makes the new
// master main instead of failing the unit and killing its cgroup. The new master waits
// until MainPID names it, then speaks for the service. So: the unit stays active (every
// sample), NRestarts stays 0, MainPID goes from the old master to the new one and never to
// 0, no request fails, the new generation serves, STATUS= is the new master's, systemd
// refused none of its notifications, and reload and stop work as after a commit.
func TestKillOldMasterBeforeCommit(t *testing.T) {
	cases := []struct {
		r    role
		inst string
		port int
	}{
		{roleSocket, "k", 18120},
		{roleFDStore, "kf", 18121},
		{roleNotifyReload, "kn", 18122},
	}
	for _, tc := range cases {
		t.Run(tc.r.String(), func(t *testing.T) { killOldMaster(t, tc.r, tc.inst, tc.port) })
	}
}

func killOldMaster(t *testing.T, r role, inst string, port int) {
	in := newInstance(t, r, inst, port)
	pidFile := expand(in.Unit.Get("Service", "PIDFile"), inst)
	if pidFile == "" {
		t.Fatalf("%s has no PIDFile=: systemd fails the unit when the old master dies before the commit", in.Unit.Name)
	}
	in.conf.Commit = "manual" // the new master waits for the commit for as long as the test needs
	c0 := cursor(t)
	in.start()
	old := in.mainPID()
	oldWorkers := in.waitWorkers(c0, old, 2)

	load := startLoad(t, in.HTTP, 4)
	load.waitLine(t, 10*time.Second, "answers from the old workers", servedByBodyOf(oldWorkers))

	newPID, newWorkers := in.upgradeReady(c0, old)
	if got := strings.TrimSpace(run(t, "cat", pidFile)); got != strconv.Itoa(newPID) {
		t.Fatalf("pid file %s says %q before the kill, want the new master %d", pidFile, got, newPID)
	}
	if m := in.mainPID(); m != old {
		t.Fatalf("MainPID = %d before the kill, want the old master %d (the old master stays main until the commit)", m, old)
	}

	s := sample(in.Name, "MainPID", "ActiveState", "NRestarts")
	c1 := cursor(t)
	t0 := time.Now()
	signal(t, "KILL", old)
	in.waitMainPID(newPID)
	t.Logf("MainPID %d -> %d seen %s after kill -9", old, newPID, time.Since(t0).Round(time.Millisecond))
	es := waitLines(t, 20*time.Second, in.Name, c1, map[string]func(entry) bool{
		"the new master learns it is main": func(e entry) bool {
			return e.Msg() == "systemd made this master its main process" && e.AttrInt("pid") == newPID
		},
		"the new master takes charge": func(e entry) bool {
			return strings.HasPrefix(e.Msg(), "the old master went away before it committed") && e.AttrInt("pid") == newPID
		},
	})
	for _, e := range withMsg(es, "systemd made this master its main process") {
		t.Logf("the new master waited %s for systemd to make it main", e.Attr("took"))
	}
	// The old workers lose their master: their parent-death signal (TERM) makes them drain.
	waitGone(t, 15*time.Second, oldWorkers...)
	waitFor(t, 10*time.Second, "STATUS= from the new master", func() (bool, string) {
		st := show(t, in.Name, "StatusText")["StatusText"]
		return strings.HasPrefix(st, "generation 2: 2/2 workers ready") && !strings.Contains(st, "upgrade"), st
	})
	lr := load.stop(t)
	seen := s.finish()
	t.Logf("requests across kill -9 of the old master: %d ok, %d failed %v", lr.OK, lr.Failed, lr.Errors)
	if lr.Failed != 0 || lr.OK == 0 {
		t.Errorf("requests across kill -9 of the old master: %d ok, %d failed: %v", lr.OK, lr.Failed, lr.Errors)
	}

	// Every sample: active, never restarted, main = old then new, never 0 (no gap).
	last := old
	for _, m := range seen {
		if m["ActiveState"] != "active" || m["NRestarts"] != "0" {
			t.Errorf("unit left active (or restarted): %v", m)
		}
		switch pid, _ := strconv.Atoi(m["MainPID"]); {
		case pid == newPID:
			last = newPID
		case pid == old && last == old:
		default:
			t.Errorf("MainPID went %d -> %s; want %d then %d only", last, m["MainPID"], old, newPID)
		}
	}
	if st := show(t, in.Name, "MainPID", "ActiveState", "SubState", "Result", "NRestarts"); st["MainPID"] != strconv.Itoa(newPID) ||
		st["ActiveState"] != "active" || st["SubState"] != "running" || st["Result"] != "success" || st["NRestarts"] != "0" {
		t.Errorf("after kill -9 of the old master: %v; want MainPID=%d active/running, Result=success, NRestarts=0", st, newPID)
	}
	if p, ok := procOf(t, newPID); !ok || p.PPID != 1 {
		t.Errorf("new master %d: running %v, ppid %d; want a running child of PID 1", newPID, ok, p.PPID)
	}
	es = journal(t, in.Name, c1)
	for _, e := range append(containing(es, "Main process exited"), append(containing(es, "Failed with result"), containing(es, "Scheduled restart")...)...) {
		t.Errorf("systemd took the old master's death for the service's: %s", e)
	}
	for _, pid := range pidsIn(es, refusedFrom) {
		if pid == newPID {
			t.Errorf("systemd refused a notification of the new master %d: it spoke before it was main", newPID)
		}
	}
	rs := mustServe(t, in.HTTP, 8)
	for pid := range rs.servedBy() {
		if !slices.Contains(newWorkers, pid) {
			t.Errorf("answered by pid %d, want only the new generation's workers %v", pid, newWorkers)
		}
	}

	// The new master is main in every respect: reload, then a graceful stop.
	c2 := cursor(t)
	if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
		t.Errorf("systemctl reload after the take-over: exit %d: %s", rc, errOut)
	}
	if m := in.mainPID(); m != newPID {
		t.Errorf("MainPID = %d after the reload, want %d", m, newPID)
	}
	mustServe(t, in.HTTP, 4)
	if _, errOut, rc := runRC(t, "systemctl", "stop", in.Name); rc != 0 {
		t.Errorf("systemctl stop after the take-over: exit %d: %s", rc, errOut)
	}
	if st := show(t, in.Name, "ActiveState", "Result"); st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Errorf("after systemctl stop: %v, want inactive, Result=success", st)
	}
	es = journal(t, in.Name, c2)
	for _, e := range append(containing(es, "SIGKILL"), containing(es, "code=killed")...) {
		t.Errorf("stop after the take-over: %s", e)
	}
	// A master's last line may be in no unit's journal (see journal).
	if !slices.ContainsFunc(withMsg(journal(t, "", c2), "master exited"), func(e entry) bool { return e.AttrInt("pid") == newPID && e.Attr("code") == "0" }) {
		t.Errorf("the new master %d did not log \"master exited\" code=0 on stop", newPID)
	}
}
