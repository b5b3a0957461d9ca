//go:build lab && linux

package labtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// currentWorkers asks the master (baton status --json) for its serving workers; it fails
// the test if a reload is still in flight or a serving worker is not ready.
func (in *instance) currentWorkers() []int {
	in.t.Helper()
	var reply supervisor.ControlReply
	out := in.status()
	if err := json.Unmarshal([]byte(out), &reply); err != nil || reply.Status == nil {
		in.t.Fatalf("baton status --json: %v: %q", err, out)
	}
	st := reply.Status
	if st.Reload != nil {
		in.t.Errorf("baton status: a reload is still in flight (%d/%d ready)", st.Reload.Ready, st.Reload.Wanted)
	}
	var pids []int
	for _, w := range st.Workers {
		if w.Role != "current" {
			continue
		}
		if w.State != "ready" {
			in.t.Errorf("baton status: current worker %d is %s, want ready", w.PID, w.State)
		}
		pids = append(pids, w.PID)
	}
	return pids
}

// servedOnlyBy waits until the probe's answers come only from pids (old workers may
// still drain), and fails the test if they never do.
func servedOnlyBy(t *testing.T, addr string, pids []int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%s answered only by %v", addr, pids), func() (bool, string) {
		r := mustServe(t, addr, 6)
		for pid := range r.servedBy() {
			if !slices.Contains(pids, pid) {
				return false, fmt.Sprint(r.servedBy())
			}
		}
		return true, ""
	})
}

// (d) systemctl reload is synchronous and tells the truth: exit 0 once the new workers
// are ready, non-zero for a bad config or workers that fail, while the old generation
// keeps serving. Through ExecReload=baton reload --wait on every version, and through
// Type=notify-reload on 253 and later.
func TestReload(t *testing.T) {
	variants := []struct {
		name string
		role role
		port int
	}{
		{"ExecReload", roleSocket, 18104},
		{"notify-reload", roleNotifyReload, 18114},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			in := newInstance(t, v.role, "d-"+strings.ToLower(strings.ReplaceAll(v.name, "-", "")), v.port)
			c0 := cursor(t)
			in.start()
			master := in.mainPID()
			gen1 := in.waitWorkers(c0, master, 2)

			// A good config: reload returns 0 when the new workers are ready.
			c := in.conf
			c.Workers = 3
			in.writeConfig(c)
			c1 := cursor(t)
			if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
				t.Fatalf("systemctl reload with a good config: exit %d: %s", rc, errOut)
			}
			if st := show(t, in.Name, "ActiveState"); st["ActiveState"] != "active" {
				t.Errorf("right after systemctl reload returned: %v, want active", st)
			}
			var current []int
			if in.Control != "" {
				// Synchronous: when reload returned, the master already served with the
				// new workers, every one ready.
				current = in.currentWorkers()
				if len(current) != 3 {
					t.Errorf("right after systemctl reload returned: current workers %v, want 3", current)
				}
				for _, w := range current {
					if slices.Contains(gen1, w) {
						t.Errorf("worker %d of before the reload is still current", w)
					}
				}
			} else {
				t.Logf("%s has no RuntimeDirectory=: not checking baton status", in.Unit.Name)
				current = in.waitWorkers(c1, master, 3)
			}
			waitJournal(t, 10*time.Second, in.Name, c1, "reload-ok in the journal", func(es []entry) bool {
				return slices.ContainsFunc(es, func(e entry) bool { return e.Attr("event") == "reload-ok" })
			})
			servedOnlyBy(t, in.HTTP, current)

			// A bad config, then workers that fail: reload says so, nothing changes.
			bad := []struct {
				name   string
				write  func()
				reason string
			}{
				{"bad config", func() { writeFile(t, in.Config, "[worker\ncount = \"many\"\n") }, "bad config"},
				{"workers fail", func() {
					c := in.conf
					c.Command = []string{"/bin/false"}
					in.writeConfig(c)
				}, "exit status 1"},
			}
			for _, b := range bad {
				b.write()
				c2 := cursor(t)
				out, errOut, rc := runRC(t, "systemctl", "reload", in.Name)
				if rc == 0 {
					t.Errorf("%s: systemctl reload exited 0, want non-zero (stdout %q stderr %q)", b.name, out, errOut)
				}
				es := waitJournal(t, 15*time.Second, in.Name, c2, b.name+": reload-failed in the journal", func(es []entry) bool {
					return slices.ContainsFunc(es, func(e entry) bool { return e.Attr("event") == "reload-failed" })
				})
				if f := filter(es, func(e entry) bool { return e.Attr("event") == "reload-failed" }); !strings.Contains(f[0].Attr("reason"), b.reason) {
					t.Errorf("%s: reload-failed reason %q, want it to mention %q", b.name, f[0].Attr("reason"), b.reason)
				}
				waitState(t, 10*time.Second, in.Name, map[string]string{"ActiveState": "active"})
				st := show(t, in.Name, "MainPID", "StatusText")
				if st["MainPID"] != strconv.Itoa(master) {
					t.Errorf("%s: MainPID %s, want %d", b.name, st["MainPID"], master)
				}
				if !strings.Contains(st["StatusText"], "reload failed") {
					t.Errorf("%s: StatusText %q, want it to tell the reload failed", b.name, st["StatusText"])
				}
				servedOnlyBy(t, in.HTTP, current)
				if in.Control != "" {
					if now := in.currentWorkers(); !slices.Equal(sorted(now), sorted(current)) {
						t.Errorf("%s: current workers %v, want the ones of before %v", b.name, now, current)
					}
				}
			}
		})
	}
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
