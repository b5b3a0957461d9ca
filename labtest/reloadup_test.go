//go:build lab && linux

package labtest

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// systemctl reload during an upgrade, under load: while the new master waits for its
// commit (commit = "manual"), and while the old master commits (held there: one old
// worker is stopped with SIGSTOP, so its drain waits). The old master refuses both
// reloads: systemctl reload exits non-zero, the refusal is in the journal, MainPID stays
// the old master (systemd re-reads PIDFile= only after a reload that succeeded, and the
// pid file names the new master), the unit never leaves active but for the reload itself
// (ActiveState=reloading). Then the commit completes: the new master is MainPID, in
// charge, and reloads. Through ExecReload=baton reload --wait on every version, and
// through Type=notify-reload on 253 and later, where systemd's SIGHUP reaches the old
// master first (it answers RELOADING=1 then READY=1, or systemctl would wait) and
// ExecReload= reports the refusal.
func TestReloadDuringUpgrade(t *testing.T) {
	variants := []struct {
		name string
		role role
		inst string
		port int
	}{
		{"ExecReload", roleSocket, "ru", 18132},
		{"notify-reload", roleNotifyReload, "ru-n", 18133},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			in := newInstance(t, v.role, v.inst, v.port)
			in.conf.Commit = "manual"
			c0 := cursor(t)
			in.start()
			old := in.mainPID()
			oldWorkers := in.waitWorkers(c0, old, 2)
			load := startLoad(t, in.HTTP, 4)
			load.waitLine(t, 10*time.Second, "answers from the old workers", servedByBodyOf(oldWorkers))
			s := sample(in.Name, "MainPID", "ActiveState")

			newPID, newWorkers := in.upgradeReady(c0, old)
			in.reloadRefused(old, v.role == roleNotifyReload, "the new master waits for its commit")

			// Held in the commit: the old master waits for a worker that cannot drain.
			held := oldWorkers[0]
			signal(t, "STOP", held)
			c1 := cursor(t)
			signal(t, "QUIT", old)
			waitJournal(t, 10*time.Second, in.Name, c1, "the old master commits", func(es []entry) bool {
				return slices.ContainsFunc(withMsg(es, "committing the upgrade: old workers drain"), func(e entry) bool { return e.AttrInt("pid") == old })
			})
			in.reloadRefused(old, v.role == roleNotifyReload, "the old master commits")
			if !alive(t, old) {
				t.Fatalf("the old master %d exited while its worker %d was held: the reload did not happen during the commit", old, held)
			}
			signal(t, "CONT", held)

			in.waitMainPID(newPID)
			waitGone(t, 10*time.Second, old)
			waitFor(t, 10*time.Second, "STATUS= from the new master", func() (bool, string) {
				st := show(t, in.Name, "StatusText")["StatusText"]
				return strings.HasPrefix(st, "generation 2: 2/2 workers ready") && !strings.Contains(st, "upgrade"), st
			})
			load.waitLine(t, 10*time.Second, "answers from the new workers", servedByBodyOf(newWorkers))
			lr := load.stop(t)
			seen := s.finish()
			t.Logf("requests across both reloads and the commit: %d ok, %d failed %v", lr.OK, lr.Failed, lr.Errors)
			if lr.Failed != 0 || lr.OK == 0 {
				t.Errorf("requests across both reloads and the commit: %d ok, %d failed: %v", lr.OK, lr.Failed, lr.Errors)
			}
			states := map[string]int{}
			last := old
			for _, m := range seen {
				states[m["ActiveState"]]++
				if m["ActiveState"] != "active" && m["ActiveState"] != "reloading" {
					t.Errorf("the unit left active: %v", m)
				}
				switch pid, _ := strconv.Atoi(m["MainPID"]); {
				case pid == newPID:
					last = newPID
				case pid == old && last == old:
				default:
					t.Errorf("MainPID went %d -> %s; want %d then %d only", last, m["MainPID"], old, newPID)
				}
			}

			t.Logf("ActiveState in %d distinct samples: %v", len(seen), states)

			// The new master is in charge: a reload now succeeds, MainPID unchanged.
			if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
				t.Errorf("systemctl reload after the commit: exit %d: %s", rc, errOut)
			}
			if st := show(t, in.Name, "MainPID", "ActiveState"); st["MainPID"] != strconv.Itoa(newPID) || st["ActiveState"] != "active" {
				t.Errorf("after the reload that followed the commit: %v, want MainPID=%d active", st, newPID)
			}
			mustServe(t, in.HTTP, 4)
		})
	}
}

// reloadRefused runs systemctl reload, which the old master must refuse (when says
// during what): a non-zero exit, the refusal in the journal (ExecReload='s `baton
// reload` prints the master's answer; with signalled, the old master also logs that it
// refused systemd's SIGHUP), MainPID and an active unit unchanged.
func (in *instance) reloadRefused(old int, signalled bool, when string) {
	t := in.t
	t.Helper()
	c := cursor(t)
	t0 := time.Now()
	out, errOut, rc := runRC(t, "systemctl", "reload", in.Name)
	t.Logf("%s: systemctl reload: exit %d in %s", when, rc, time.Since(t0).Round(time.Millisecond))
	if rc == 0 {
		t.Errorf("%s: systemctl reload exited 0, want a refusal (stdout %q stderr %q)", when, out, errOut)
	}
	checks := map[string]func(entry) bool{
		"baton reload prints the refusal": func(e entry) bool { return strings.Contains(e.Message(), "an upgrade is in flight") },
	}
	if signalled {
		checks["the old master refuses SIGHUP"] = func(e entry) bool {
			return e.AttrInt("pid") == old && e.Attr("event") == "reload-failed" && strings.HasPrefix(e.Msg(), "reload refused")
		}
	}
	waitLines(t, 10*time.Second, in.Name, c, checks)
	waitState(t, 10*time.Second, in.Name, map[string]string{"ActiveState": "active"})
	if m := in.mainPID(); m != old {
		t.Errorf("%s: MainPID %d after the refused reload, want the old master %d", when, m, old)
	}
}
