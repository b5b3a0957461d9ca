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

// mainStays fails the test unless every sample shows MainPID=pid and an active unit.
func mainStays(t *testing.T, seen []map[string]string, pid int) {
	t.Helper()
	for _, m := range seen {
		if m["MainPID"] != strconv.Itoa(pid) || m["ActiveState"] != "active" {
			t.Errorf("unit left MainPID=%d/active: saw %v", pid, m)
		}
	}
}

// (e) The nginx manual dance under systemd, rolled back: USR2; WINCH old; HUP old; QUIT
// new. MainPID stays on the old master, the unit stays active, the old generation serves.
func TestManualRollback(t *testing.T) {
	in := newInstance(t, roleSocket, "e", 18105)
	in.conf.Commit = "manual"
	c0 := cursor(t)
	in.start()
	old := in.mainPID()
	oldWorkers := in.waitWorkers(c0, old, 2)
	s := sample(in.Name, "MainPID", "ActiveState")

	newPID, newWorkers := in.upgradeReady(c0, old)

	signal(t, "WINCH", old)
	in.waitExited(c0, oldWorkers)
	if g := mustServe(t, in.HTTP, 6).generations(); g[2] != 6 {
		t.Errorf("after WINCH to the old master, answers by generation: %v; want all from 2", g)
	}

	c2 := cursor(t)
	signal(t, "HUP", old)
	back := in.waitWorkers(c2, old, 2)

	c3 := cursor(t)
	signal(t, "QUIT", newPID)
	waitJournal(t, 30*time.Second, in.Name, c3, "the old master rolls back", func(es []entry) bool {
		return slices.ContainsFunc(es, func(e entry) bool { return e.Attr("event") == "upgrade-rolled-back" && e.AttrInt("pid") == old })
	})
	waitFor(t, 10*time.Second, fmt.Sprintf("new master %d gone", newPID), func() (bool, string) {
		return !alive(t, newPID), "alive"
	})
	in.waitExited(c3, newWorkers)
	mainStays(t, s.finish(), old)
	if st := show(t, in.Name, "MainPID", "ActiveState"); st["MainPID"] != strconv.Itoa(old) || st["ActiveState"] != "active" {
		t.Errorf("after the rollback: %v, want MainPID=%d active", st, old)
	}
	r := mustServe(t, in.HTTP, 8)
	for pid := range r.servedBy() {
		if !slices.Contains(back, pid) {
			t.Errorf("answered by pid %d, want only the old master's workers %v", pid, back)
		}
	}
}

// (f) A new master that crashes or hangs before it is ready changes nothing: MainPID, an
// active unit, the old workers serving.
func TestFailedUpgradeChangesNothing(t *testing.T) {
	cases := []struct {
		name   string
		inst   string
		port   int
		script string        // replaces baton on disk; "" keeps it
		conf   func(c *conf) // rewrites the config on disk before USR2; nil keeps it
		reason string        // in the rollback's log line
	}{
		{name: "binary exits", inst: "f-exit", port: 18106, script: "#!/bin/sh\nexit 3\n", reason: "exited without a word: exit status 3"},
		{name: "binary hangs", inst: "f-hang", port: 18107, script: "#!/bin/sh\nexec sleep 600\n", reason: "not ready within 3s"},
		{name: "workers fail", inst: "f-workers", port: 18108, conf: func(c *conf) {
			c.Command = []string{"/bin/false"} // the new master reads the file; the old one keeps its config
		}, reason: "exit status 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t, roleSocket, tc.inst, tc.port)
			in.conf.Timeout = "3s"
			c0 := cursor(t)
			in.start()
			old := in.mainPID()
			oldWorkers := in.waitWorkers(c0, old, 2)
			if tc.script != "" {
				installScript(t, tc.script)
			}
			if tc.conf != nil {
				c := in.conf
				tc.conf(&c)
				in.writeConfig(c)
			}
			s := sample(in.Name, "MainPID", "ActiveState")
			c1 := cursor(t)
			signal(t, "USR2", old)
			var rolled entry
			waitJournal(t, 30*time.Second, in.Name, c1, "the old master rolls back", func(es []entry) bool {
				for _, e := range es {
					if e.Attr("event") == "upgrade-rolled-back" && e.AttrInt("pid") == old {
						rolled = e
						return true
					}
				}
				return false
			})
			mainStays(t, s.finish(), old)
			if !strings.Contains(rolled.Attr("reason"), tc.reason) {
				t.Errorf("rollback reason %q, want it to mention %q", rolled.Attr("reason"), tc.reason)
			}
			if n := rolled.AttrInt("new_pid"); n == 0 || alive(t, n) {
				t.Errorf("new master %d still runs (or no new_pid in %s)", n, rolled)
			}
			if st := show(t, in.Name, "StatusText")["StatusText"]; !strings.Contains(st, "upgrade rolled back") {
				t.Errorf("StatusText = %q, want it to tell the upgrade was rolled back", st)
			}
			r := mustServe(t, in.HTTP, 8)
			for pid := range r.servedBy() {
				if !slices.Contains(oldWorkers, pid) {
					t.Errorf("answered by pid %d, want only the old workers %v", pid, oldWorkers)
				}
			}
		})
	}
}
