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

	"github.com/baton-supervisor/baton/logging"
)

// Issue 12, probation, on real systemd, under load: a reload's new workers on trial
// (reload.soak) beside the old ones, and a new master on trial until its commit, with a
// [health] check. A failing check makes `systemctl reload` exit non-zero and `baton upgrade
// --wait` exit 1, each with the check's words, while MainPID, the unit's state and the
// serving workers stay as they were; a passing check with a soak lets the reload through
// after its trial. No request fails.
func TestProbation(t *testing.T) {
	variants := []struct {
		name string
		role role
		port int
	}{
		{"ExecReload", roleSocket, 18180},
		{"notify-reload", roleNotifyReload, 18181},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			in := newInstance(t, v.role, "p-"+strings.ToLower(strings.ReplaceAll(v.name, "-", "")), v.port)
			down := filepath.Join(lab.Dir, "check-down-"+in.Inst)
			writeFile(t, down, "#!/bin/sh\necho checking\necho backend down\nexit 1\n")
			ok := filepath.Join(lab.Dir, "check-ok-"+in.Inst)
			// The check sees the generation it checks: its master is its parent, and its
			// workers are alive.
			writeFile(t, ok, `#!/bin/sh
[ "$BATON_MASTER_PID" = "$PPID" ] || { echo "master $BATON_MASTER_PID, parent $PPID"; exit 1; }
for p in $BATON_WORKER_PIDS; do [ -d /proc/$p ] || { echo "worker $p gone"; exit 1; }; done
`)
			run(t, "chmod", "0755", down, ok)
			failing := fmt.Sprintf("[health]\ncheck = [%q]\ncheck_interval = \"100ms\"\ncheck_failures = 2\n", down)
			const reason = "health check failed 2 time(s) in a row: exit status 1: backend down"

			in.conf = conf{Workers: 2, Commit: "auto", Soak: "1s", Timeout: "20s"}
			in.start()
			master := in.mainPID()
			load := startLoad(t, in.HTTP, 4)
			load.waitLine(t, 10*time.Second, "first answers", func(string) bool { return true })
			var current []int
			if in.Control != "" {
				current = in.currentWorkers()
			}

			// A reload whose check fails: non-zero, nothing changes, the reason everywhere.
			c := in.conf
			c.Extra = "[reload]\nsoak = \"1h\"\n\n" + failing
			in.writeConfig(c)
			c1 := cursor(t)
			if out, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc == 0 {
				t.Errorf("systemctl reload with a failing check exited 0 (stdout %q stderr %q)", out, errOut)
			}
			es := waitJournal(t, 15*time.Second, in.Name, c1, "probation-failed and reload-failed", func(es []entry) bool {
				return slices.ContainsFunc(es, func(e entry) bool { return e.Attr("event") == "reload-failed" })
			})
			checkProbationFailed(t, es, master, reason)
			waitState(t, 10*time.Second, in.Name, map[string]string{"ActiveState": "active"})
			st := show(t, in.Name, "MainPID", "StatusText")
			if st["MainPID"] != strconv.Itoa(master) || !strings.Contains(st["StatusText"], reason) {
				t.Errorf("after the failed reload: %v, want MainPID %d and %q in StatusText", st, master, reason)
			}
			if in.Control != "" {
				if now := in.currentWorkers(); !slices.Equal(sorted(now), sorted(current)) {
					t.Errorf("after the failed reload: current workers %v, want the ones of before %v", now, current)
				}
			}

			// A reload whose check passes, with a soak: on trial first, then through.
			c.Extra = fmt.Sprintf("[reload]\nsoak = \"1s\"\n\n[health]\ncheck = [%q]\ncheck_interval = \"200ms\"\n", ok)
			in.writeConfig(c)
			c2 := cursor(t)
			if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
				t.Fatalf("systemctl reload with a passing check: exit %d: %s", rc, errOut)
			}
			es = journal(t, in.Name, c2)
			trial := slices.IndexFunc(es, func(e entry) bool {
				return strings.HasPrefix(e.Msg(), "probation: the reload's new workers are on trial")
			})
			done := slices.IndexFunc(es, func(e entry) bool { return e.Attr("event") == "reload-ok" })
			if trial < 0 || done < trial {
				t.Errorf("journal after the passing reload: on trial at %d, reload-ok at %d; want both, in that order", trial, done)
			}
			if f := withMsg(es, "health check failed"); len(f) > 0 {
				t.Errorf("the passing check failed: %s", f[0])
			}

			// A rolling reload with a canary on trial: through, batch by batch.
			c.Workers = 3
			c.Extra = fmt.Sprintf("[reload]\nsoak = \"500ms\"\n\n[rollout]\nstrategy = \"rolling\"\ncanary = 1\n\n[health]\ncheck = [%q]\ncheck_interval = \"200ms\"\n", ok)
			in.writeConfig(c)
			c4 := cursor(t)
			if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
				t.Fatalf("systemctl reload, rolling with a canary: exit %d: %s", rc, errOut)
			}
			es = journal(t, in.Name, c4)
			// 2 old workers, 3 new: slots 1 and 2 replace theirs, one batch each; slot 3 has no
			// old worker to retire.
			if n := len(withMsg(es, "reload: old workers retire for the new ones")); n != 2 {
				t.Errorf("rolling reload from 2 to 3 workers: %d retirements in the journal, want 2 (one per batch)", n)
			}
			if len(withMsg(es, "reload: the canary is ready; probation before the rest")) != 1 {
				t.Errorf("rolling reload: no canary probation in the journal")
			}

			// A rolling upgrade, same config: the new master's canary on trial, its batches
			// as the old master retires its workers; MainPID moves to the new master.
			c5 := cursor(t)
			if out, errOut, rc := runRC(t, filepath.Join(lab.Bin, "baton"), "upgrade", "--wait", "-c", in.Config); in.Control != "" && rc != 0 {
				t.Fatalf("baton upgrade --wait, rolling: exit %d: %s %s", rc, out, errOut)
			}
			waitJournal(t, 15*time.Second, in.Name, c5, "upgrade-committed", func(es []entry) bool {
				return slices.ContainsFunc(es, func(e entry) bool { return e.Attr("event") == "upgrade-committed" })
			})
			es = journal(t, in.Name, c5)
			if n := len(withMsg(es, "rolling upgrade: starting a batch of workers")); n != 3 {
				t.Errorf("rolling upgrade of 3 workers, canary 1, surge 1: %d batches in the journal, want 3", n)
			}
			if n := len(withMsg(es, "rolling upgrade: old workers retire for the new master's")); n != 2 {
				t.Errorf("rolling upgrade: the old master retired workers %d times for the batches, want 2", n)
			}
			waitState(t, 10*time.Second, in.Name, map[string]string{"ActiveState": "active"})
			if now := in.mainPID(); now == master {
				t.Errorf("after the rolling upgrade MainPID is still %d", master)
			} else {
				master = now
			}

			// Reloads all at once with stop_spread: a pool's own config paces its retire, so
			// the second reload's old workers (started with stop_spread) stop one at a time,
			// and systemctl reload still returns once the new ones are ready.
			c.Extra, c.Worker = "", `stop_spread = "1s"`
			in.writeConfig(c)
			var c6 string
			for i := range 2 {
				c6 = cursor(t)
				if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
					t.Fatalf("systemctl reload %d with stop_spread: exit %d: %s", i+1, rc, errOut)
				}
			}
			waitJournal(t, 15*time.Second, in.Name, c6, "the old workers' stops paced", func(es []entry) bool {
				return slices.ContainsFunc(withMsg(es, "workers stop one at a time"), func(e entry) bool { return e.Attr("workers") == "3" })
			})
			c.Worker = ""
			c.Workers = 2

			// An upgrade whose new master's check fails: rolled back, `--wait` says why.
			c.Extra = failing
			in.writeConfig(c)
			c3 := cursor(t)
			out, errOut, rc := runRC(t, filepath.Join(lab.Bin, "baton"), "upgrade", "--wait", "-c", in.Config)
			if in.Control != "" && (rc != 1 || !strings.Contains(out+errOut, reason)) {
				t.Errorf("baton upgrade --wait with a failing check: exit %d, output %q %q; want 1 and %q", rc, out, errOut, reason)
			}
			es = waitJournal(t, 15*time.Second, in.Name, c3, "upgrade-rolled-back", func(es []entry) bool {
				return slices.ContainsFunc(es, func(e entry) bool { return e.Attr("event") == "upgrade-rolled-back" })
			})
			checkProbationFailed(t, es, 0, reason)
			if rb := filter(es, func(e entry) bool { return e.Attr("event") == "upgrade-rolled-back" }); !strings.Contains(rb[0].Attr("reason"), reason) {
				t.Errorf("upgrade-rolled-back reason %q, want %q", rb[0].Attr("reason"), reason)
			}
			waitState(t, 10*time.Second, in.Name, map[string]string{"ActiveState": "active", "MainPID": strconv.Itoa(master)})

			load.stopNoFailures(t, "load through the trials")
		})
	}
}

// checkProbationFailed finds the probation-failed entry with the reason in es (of master
// pid, when not 0) and checks its MESSAGE_ID.
func checkProbationFailed(t *testing.T, es []entry, pid int, reason string) {
	t.Helper()
	f := filter(es, func(e entry) bool {
		return e.Attr("event") == "probation-failed" && (pid == 0 || e.AttrInt("pid") == pid)
	})
	if len(f) == 0 {
		t.Errorf("no probation-failed entry in the journal")
		return
	}
	if !strings.Contains(f[0].Msg(), reason) {
		t.Errorf("probation-failed: %q, want %q in it", f[0].Msg(), reason)
	}
	if id := f[0].F["MESSAGE_ID"]; id != logging.MessageIDProbationFailed {
		t.Errorf("probation-failed MESSAGE_ID=%q, want %q", id, logging.MessageIDProbationFailed)
	}
}
