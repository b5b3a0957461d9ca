//go:build lab && linux

package labtest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newMaster waits for the new master that an upgrade started after the cursor, and
// returns its pid (from its own "new master started by upgrade" line).
func (in *instance) newMaster(after string, old int) int {
	in.t.Helper()
	var pid int
	waitJournal(in.t, 20*time.Second, in.Name, after, "a new master started by upgrade", func(es []entry) bool {
		for _, e := range withMsg(es, "new master started by upgrade") {
			if e.AttrInt("old_pid") == old {
				pid = e.AttrInt("pid")
				return true
			}
		}
		return false
	})
	return pid
}

// upgradeReady sends USR2 to the old master and waits until the new master's workers
// are ready and the old master knows it (with commit = "manual" the upgrade then waits
// for the test); it returns the new master's pid and its workers.
func (in *instance) upgradeReady(after string, old int) (int, []int) {
	in.t.Helper()
	signal(in.t, "USR2", old)
	newPID := in.newMaster(after, old)
	workers := in.waitWorkers(after, newPID, in.conf.Workers)
	waitJournal(in.t, 20*time.Second, in.Name, after, "the old master sees the new one ready", func(es []entry) bool {
		return slices.ContainsFunc(withMsg(es, "new master ready"), func(e entry) bool { return e.AttrInt("new_pid") == newPID })
	})
	return newPID, workers
}

// waitMainPID waits until systemd's MainPID of the service is pid.
func (in *instance) waitMainPID(pid int) {
	in.t.Helper()
	waitState(in.t, 30*time.Second, in.Name, map[string]string{"MainPID": strconv.Itoa(pid), "ActiveState": "active"})
}

// exitedHow returns, for each worker pid in pids, how baton says it exited ("exit status
// 0", "killed by SIGKILL", …), from the "worker exited" lines; a pid with no line is absent.
func exitedHow(es []entry, pids []int) map[int]string {
	how := map[int]string{}
	for _, e := range withMsg(es, "worker exited") {
		if w := e.AttrInt("worker_pid"); slices.Contains(pids, w) {
			how[w] = e.Attr("how")
		}
	}
	return how
}

// waitExited waits until baton has logged the exit of every pid, and fails the test
// unless each exited with status 0.
func (in *instance) waitExited(after string, pids []int) {
	in.t.Helper()
	var how map[int]string
	waitJournal(in.t, 30*time.Second, in.Name, after, fmt.Sprintf("workers %v exited", pids), func(es []entry) bool {
		how = exitedHow(es, pids)
		return len(how) == len(pids)
	})
	for _, w := range pids {
		if how[w] != "exit status 0" {
			in.t.Errorf("worker %d exited with %q, want \"exit status 0\"", w, how[w])
		}
	}
}

var sigUSR2To = regexp.MustCompile(`Sending signal SIGUSR2 to process (\d+)`)

// (b) systemctl kill -s USR2 (the whole cgroup) upgrades: MainPID names the new master,
// no worker died of the stray USR2, STATUS= told the story.
func TestKillUSR2Upgrades(t *testing.T) {
	in := newInstance(t, roleSocket, "b", 18102)
	in.conf.Soak = "2s" // long enough for STATUS= to be seen mid-upgrade
	c0 := cursor(t)
	in.start()
	old := in.mainPID()
	oldWorkers := in.waitWorkers(c0, old, 2)
	mustServe(t, in.HTTP, 4)

	swapBaton(t, "baton-v2")
	c1 := cursor(t)
	s := sample(in.Name, "MainPID", "ActiveState", "StatusText")
	run(t, "systemctl", "kill", "-s", "USR2", in.Name)
	newPID := in.newMaster(c1, old)
	in.waitMainPID(newPID)
	seen := s.finish()

	// MainPID is the new master: systemd's own child, running the new binary.
	p, ok := procOf(t, newPID)
	if !ok {
		t.Fatalf("new master %d is not running", newPID)
	}
	if p.PPID != 1 || len(p.Cmdline) < 2 || p.Cmdline[0] != filepath.Join(lab.Bin, "baton") || p.Cmdline[1] != "run" {
		t.Errorf("new master %d: ppid %d, cmdline %q; want ppid 1, %s run …", newPID, p.PPID, p.Cmdline, filepath.Join(lab.Bin, "baton"))
	}
	es := journal(t, in.Name, c1)
	var version string
	for _, e := range withMsg(es, "master starting") {
		if e.AttrInt("pid") == newPID {
			version = e.Attr("version")
		}
	}
	if version != "labtest-2" {
		t.Errorf("new master %d started as version %q, want labtest-2 (the binary swapped in)", newPID, version)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("old master %d gone", old), func() (bool, string) {
		return !alive(t, old), "alive"
	})

	// The signal reached every old worker, and none of them died of it: each exited 0
	// when the commit retired it.
	got := pidsIn(es, sigUSR2To)
	for _, w := range oldWorkers {
		if !slices.Contains(got, w) {
			t.Errorf("systemd did not log SIGUSR2 to old worker %d (it logged %v): the test proves nothing", w, got)
		}
	}
	in.waitExited(c1, oldWorkers)
	es = journal(t, in.Name, c1)
	bad := append(containing(es, "code=killed"), containing(es, "killed by SIGUSR2")...)
	bad = append(bad, filter(es, func(e entry) bool { return e.Attr("event") == "worker-crashed" })...)
	// A committed upgrade is not an old master that went away (issue 8's path).
	bad = append(bad, withMsg(es, "systemd made this master its main process")...)
	bad = append(bad, filter(es, func(e entry) bool { return strings.HasPrefix(e.Msg(), "the old master went away") })...)
	for _, e := range bad {
		t.Errorf("journal: %s", e)
	}

	// STATUS= said an upgrade was in flight, then names generation 2.
	if !slices.ContainsFunc(seen, func(m map[string]string) bool {
		return strings.Contains(m["StatusText"], fmt.Sprintf("upgrade to pid %d", newPID))
	}) {
		t.Errorf("StatusText never mentioned the upgrade to pid %d; saw %v", newPID, seen)
	}
	if st := show(t, in.Name, "StatusText")["StatusText"]; !strings.HasPrefix(st, "generation 2: 2/2 workers ready") {
		t.Errorf("StatusText after the upgrade = %q, want generation 2: 2/2 workers ready…", st)
	}
	r := mustServe(t, in.HTTP, 8)
	if g := r.generations(); g[2] != 8 {
		t.Errorf("after the upgrade, answers by generation: %v; want all from generation 2", g)
	}
}

// (c) After an upgrade, systemctl stop is graceful: no SIGKILL, the workers drain.
func TestStopAfterUpgradeIsGraceful(t *testing.T) {
	in := newInstance(t, roleSocket, "c", 18103)
	c0 := cursor(t)
	in.start()
	old := in.mainPID()
	in.waitWorkers(c0, old, 2)
	run(t, "systemctl", "kill", "-s", "USR2", in.Name)
	newPID := in.newMaster(c0, old)
	in.waitMainPID(newPID)
	newWorkers := in.waitWorkers(c0, newPID, 2)
	waitFor(t, 10*time.Second, fmt.Sprintf("old master %d gone", old), func() (bool, string) {
		return !alive(t, old), "alive"
	})

	c1 := cursor(t)
	t0 := time.Now()
	if _, errOut, rc := runRC(t, "systemctl", "stop", in.Name); rc != 0 {
		t.Fatalf("systemctl stop: exit %d: %s", rc, errOut)
	}
	t.Logf("systemctl stop took %s", time.Since(t0).Round(time.Millisecond))
	st := show(t, in.Name, "ActiveState", "Result")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Errorf("after stop: %v, want ActiveState=inactive Result=success", st)
	}
	// Each worker of the new master drained (hello logs "draining", then "stopped") and
	// exited 0; the master exited 0.
	checks := map[string]func(entry) bool{
		fmt.Sprintf("master %d: master exited code=0", newPID): func(e entry) bool {
			return e.Msg() == "master exited" && e.AttrInt("pid") == newPID && e.Attr("code") == "0"
		},
	}
	for _, w := range newWorkers {
		for _, msg := range []string{"draining", "stopped"} {
			checks[fmt.Sprintf("worker %d: %s", w, msg)] = func(e entry) bool { return e.Msg() == msg && e.AttrInt("pid") == w }
		}
		checks[fmt.Sprintf("worker %d: worker exited how=exit status 0", w)] = func(e entry) bool {
			return e.Msg() == "worker exited" && e.AttrInt("worker_pid") == w && e.Attr("how") == "exit status 0"
		}
	}
	waitLines(t, 10*time.Second, "", c1, checks) // "master exited" may be in no unit's journal
	es := journal(t, in.Name, c1)
	for _, e := range append(containing(es, "SIGKILL"), containing(es, "code=killed")...) {
		t.Errorf("journal: %s", e)
	}
}
