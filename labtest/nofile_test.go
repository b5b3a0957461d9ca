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

// A low LimitNOFILE= (a drop-in: 64, soft and hard, which the master starts with), under
// load, and two ways to run out:
//
//   - a config on disk that needs more: 64 more listeners (abstract unix sockets, which
//     baton opens itself: the FD store unit). The reload fails in the master; the upgrade
//     in the new master, which reads that config (the old master rolls back).
//   - the master's own (soft) limit lowered to its open fds + 3 (prlimit: a master that
//     opened many), the config as at the start: the upgrade fails in the old master as it hands
//     its sockets over, the reload as it reads the config or starts workers.
//
// Each time systemctl reload and `baton upgrade --wait` (USR2 through the control socket)
// fail, with "too many open files" in the master's journal line and in `baton`'s error;
// the unit stays active with the same MainPID in every sample, the pid file names the
// master (no .oldbin left), the new master of an upgrade is gone, the master has as many
// fds open as before (nothing leaked), and its workers keep serving: 0 failed requests.
func TestLowNOFILE(t *testing.T) {
	const limit = 64
	const emfile = "too many open files"
	in := newInstance(t, roleFDStore, "nofile", 18136)
	in.serviceDropIn(fmt.Sprintf("LimitNOFILE=%d", limit))
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	workers := in.waitWorkers(c0, master, 2)
	load := startLoad(t, in.HTTP, 4)
	load.waitLine(t, 10*time.Second, "answers from the workers", servedByBodyOf(workers))
	fds := openFDs(t, master)
	t.Logf("the master has %d fds open, the limit is %d", fds, limit)
	pidFile := expand(in.Unit.Get("Service", "PIDFile"), in.Inst)
	s := sample(in.Name, "MainPID", "ActiveState")
	base := in.conf
	c := base
	for i := range limit {
		c.Listen = append(c.Listen, listen{fmt.Sprintf("extra%d", i), fmt.Sprintf("@labtest-nofile-%d", i)})
	}
	in.writeConfig(c)

	// failedWith waits for the master's line of event (one of events) after the cursor and
	// checks that its reason says EMFILE; it returns the line.
	failedWith := func(after, what string, events ...string) entry {
		var line entry
		waitJournal(t, 20*time.Second, in.Name, after, what+": the master's error in the journal", func(es []entry) bool {
			i := slices.IndexFunc(es, func(e entry) bool { return e.AttrInt("pid") == master && slices.Contains(events, e.Attr("event")) })
			if i >= 0 {
				line = es[i]
			}
			return i >= 0
		})
		if why := line.Attr("reason") + line.Attr("err"); !strings.Contains(why, emfile) {
			t.Errorf("%s: %s; want it to say %q", what, line, emfile)
		}
		t.Logf("%s: %s", what, line)
		return line
	}

	// reloadAndUpgrade runs both, each of which must fail for want of fds.
	reloadAndUpgrade := func(how string) {
		t.Helper()
		c1 := cursor(t)
		out, errOut, rc := runRC(t, "systemctl", "reload", in.Name)
		if rc == 0 {
			t.Errorf("%s: systemctl reload: exit 0 (stdout %q stderr %q)", how, out, errOut)
		}
		failedWith(c1, how+": systemctl reload", "reload-failed")

		c2 := cursor(t)
		out, errOut, rc = runRC(t, filepath.Join(lab.Bin, "baton"), "upgrade", "--wait", "--socket", in.Control)
		t.Logf("%s: baton upgrade --wait: exit %d: %s", how, rc, strings.TrimSpace(out+errOut))
		if rc == 0 || !strings.Contains(out+errOut, emfile) {
			t.Errorf("%s: baton upgrade --wait: exit %d, %q; want non-zero and %q", how, rc, strings.TrimSpace(out+errOut), emfile)
		}
		if n := failedWith(c2, how+": baton upgrade", "upgrade-rolled-back", "upgrade-failed").AttrInt("new_pid"); n != 0 {
			waitGone(t, 10*time.Second, n)
		}

		if got := strings.TrimSpace(run(t, "sh", "-c", `cat "$1"; ls "$1.oldbin" 2>/dev/null; true`, "sh", pidFile)); got != strconv.Itoa(master) {
			t.Errorf("%s: pid file %s (and .oldbin): %q, want %d alone", how, pidFile, got, master)
		}
		if n := openFDs(t, master); n != fds {
			t.Errorf("%s: the master has %d fds open after the failed reload and upgrade, %d before", how, n, fds)
		}
		servedOnlyBy(t, in.HTTP, workers)
	}
	reloadAndUpgrade(fmt.Sprintf("%d listeners more in the config", limit))

	in.writeConfig(base)
	// The soft limit only: with the hard one below the service's, the master could not
	// give its new workers the service's limit, and the reload would fail on that.
	run(t, "prlimit", "--pid", strconv.Itoa(master), fmt.Sprintf("--nofile=%d:%d", fds+3, limit))
	reloadAndUpgrade(fmt.Sprintf("the master's soft limit at %d fds", fds+3))

	load.stopNoFailures(t, "requests")
	for _, m := range s.finish() {
		if m["MainPID"] != strconv.Itoa(master) || (m["ActiveState"] != "active" && m["ActiveState"] != "reloading") {
			t.Errorf("unit left MainPID=%d/active: saw %v", master, m)
		}
	}
	if st := show(t, in.Name, "ActiveState")["ActiveState"]; st != "active" {
		t.Errorf("after the failed reload and upgrade: ActiveState=%s, want active", st)
	}
}
