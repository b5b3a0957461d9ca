//go:build lab && linux

package labtest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// (issue 9) The control socket follows the config. ExecReload= and ExecStop= read
// control_socket from the file as it is now; the master listens where the file said when
// it started, and always on $RUNTIME_DIRECTORY/control.sock too. Under load, for each
// service unit: control_socket moved, then `systemctl reload` (found through the runtime
// socket; the master moves to the new path), `baton upgrade` from a shell (the new master
// moves when it takes charge), and `systemctl stop` with every socket file gone (ExecStop=
// falls back to QUIT to $MAINPID). Nothing fails, no SIGKILL, Result=success.
func TestControlSocketFollowsTheConfig(t *testing.T) {
	cases := []struct {
		r    role
		inst string
		port int
	}{
		{roleSocket, "cs", 18140},
		{roleFDStore, "cf", 18141},
		{roleNotifyReload, "cn", 18142},
	}
	for _, tc := range cases {
		t.Run(tc.r.String(), func(t *testing.T) { controlFollows(t, tc.r, tc.inst, tc.port) })
	}
}

func controlFollows(t *testing.T, r role, inst string, port int) {
	in := newInstance(t, r, inst, port)
	if in.Control == "" {
		t.Skipf("%s has no RuntimeDirectory=", in.Unit.Name)
	}
	dir := filepath.Dir(in.Control)
	sock := func(name string) string { return fmt.Sprintf("control_socket = %q", filepath.Join(dir, name)) }
	baton := filepath.Join(lab.Bin, "baton")
	answers := func(path string) bool {
		_, _, rc := runRC(t, baton, "status", "--socket", path)
		return rc == 0
	}
	in.conf.Top = sock("a.sock")
	in.start()
	first := in.mainPID()
	for _, p := range []string{filepath.Join(dir, "a.sock"), in.Control} {
		if !answers(p) {
			t.Fatalf("no master answers on %s", p)
		}
	}
	load := startLoad(t, in.HTTP, 4)

	c := in.conf
	c.Top = sock("b.sock")
	in.writeConfig(c)
	if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
		t.Fatalf("systemctl reload after control_socket moved: exit %d: %s", rc, errOut)
	}
	if m := in.mainPID(); m != first || !answers(filepath.Join(dir, "b.sock")) || answers(filepath.Join(dir, "a.sock")) {
		t.Fatalf("after the reload: MainPID %d (want %d); want the master on b.sock, not a.sock", m, first)
	}

	c.Top = sock("c.sock")
	in.writeConfig(c)
	c0 := cursor(t)
	if out, errOut, rc := runRC(t, baton, "upgrade", "--wait", "-c", in.Config); rc != 0 {
		t.Fatalf("baton upgrade --wait -c after control_socket moved: exit %d: %s %s", rc, out, errOut)
	}
	second := in.newMaster(c0, first)
	in.waitMainPID(second)
	waitFor(t, 10*time.Second, "the new master on c.sock", func() (bool, string) {
		return answers(filepath.Join(dir, "c.sock")), "no answer"
	})

	load.stopNoFailures(t, "requests across reload and upgrade")

	// No socket answers anywhere: ExecStop= has only systemd's $MAINPID.
	run(t, "sh", "-c", "rm -f "+filepath.Join(dir, "*.sock"))
	c1 := cursor(t)
	if _, errOut, rc := runRC(t, "systemctl", "stop", in.Name); rc != 0 {
		t.Errorf("systemctl stop with no control socket: exit %d: %s", rc, errOut)
	}
	if st := show(t, in.Name, "ActiveState", "Result"); st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Errorf("after systemctl stop: %v, want inactive, Result=success", st)
	}
	es := journal(t, in.Name, c1)
	for _, e := range append(containing(es, "SIGKILL"), containing(es, "code=killed")...) {
		t.Errorf("stop with no control socket: %s", e)
	}
	if len(containing(es, "sent QUIT to the main process")) == 0 {
		t.Errorf("ExecStop= did not fall back to $MAINPID: %d journal lines, none says \"sent QUIT to the main process\"", len(es))
	}
	if alive(t, second) {
		t.Errorf("master %d alive after the stop", second)
	}
}
