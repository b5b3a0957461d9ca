//go:build lab && linux

package labtest

import (
	"path/filepath"
	"strings"
	"testing"
)

// (issue 9) Client waits tell the truth under systemd. With commit = "manual", `baton
// upgrade --wait` returns once the new master is ready, exit 4, saying it waits for the
// operator (it ended in "i/o timeout" before); `baton commit --wait` then commits, exit 0:
// systemd takes the new master as MainPID, and the old master did not ask systemd whether
// it stops the unit (that question is for QUIT, which is also the units' KillSignal=).
// Under load; nothing fails; the stop after it is graceful.
func TestManualCommitThroughControl(t *testing.T) {
	in := newInstance(t, roleSocket, "mc", 18160)
	if in.Control == "" {
		t.Skipf("%s has no RuntimeDirectory=", in.Unit.Name)
	}
	in.conf.Commit = "manual"
	in.start()
	first := in.mainPID()
	baton := filepath.Join(lab.Bin, "baton")
	load := startLoad(t, in.HTTP, 4)

	c0 := cursor(t)
	out, errOut, rc := runRC(t, baton, "upgrade", "--wait", "--socket", in.Control)
	t.Logf("baton upgrade --wait: exit %d: %s%s", rc, out, errOut)
	if rc != 4 || !strings.Contains(out, "it waits for you: `baton commit` commits") {
		t.Fatalf("baton upgrade --wait on a manual-commit master: exit %d, %q %q; want 4, waiting for the operator", rc, out, errOut)
	}
	second := in.newMaster(c0, first)
	if m := in.mainPID(); m != first {
		t.Fatalf("MainPID %d before the commit, want the old master %d", m, first)
	}

	out, errOut, rc = runRC(t, baton, "commit", "--wait", "--socket", in.Control)
	t.Logf("baton commit --wait: exit %d: %s%s", rc, out, errOut)
	if rc != 0 || !strings.Contains(out, "upgrade committed") {
		t.Fatalf("baton commit --wait: exit %d, %q %q; want 0, committed", rc, out, errOut)
	}
	in.waitMainPID(second)
	es := journal(t, "", c0)
	if asked := containing(es, "asking systemd whether it stops the unit"); len(asked) > 0 {
		t.Errorf("baton commit asked systemd as QUIT does: %s", asked[0])
	}
	load.stopNoFailures(t, "requests across the manual commit")

	out, errOut, rc = runRC(t, baton, "commit", "--socket", in.Control)
	if rc != 1 || !strings.Contains(errOut, "no upgrade in flight") {
		t.Errorf("baton commit with nothing in flight: exit %d, %q %q; want 1", rc, out, errOut)
	}

	c1 := cursor(t)
	if _, errOut, rc := runRC(t, "systemctl", "stop", in.Socket, in.Name); rc != 0 {
		t.Errorf("systemctl stop: exit %d: %s", rc, errOut)
	}
	if st := show(t, in.Name, "ActiveState", "Result"); st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Errorf("after systemctl stop: %v, want inactive, Result=success", st)
	}
	for _, e := range containing(journal(t, in.Name, c1), "SIGKILL") {
		t.Errorf("stop: %s", e)
	}
}
