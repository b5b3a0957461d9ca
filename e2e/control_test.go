//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/baton-supervisor/baton/supervisor"
)

// baton runs a control verb with the test's v1 binary and returns its output and exit code.
func (s *service) baton(args ...string) (string, int) {
	s.t.Helper()
	cmd := exec.Command(bin.baton, args...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return string(out), code
}

const controlConfig = "control_socket = \"baton.sock\"\n"

// TestControlReloadWait: `baton reload --wait` returns when the reload is over, with its
// result: 0 for a good config, 1 with the reason for a bad one, old workers serving.
func TestControlReloadWait(t *testing.T) {
	s := newService(t)
	master := s.run(controlConfig + s.helloConfig(2, ""))
	old := s.waitWorkers(master, 2)

	s.writeConfig(controlConfig + s.helloConfig(3, ""))
	out, code := s.baton("reload", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "reload complete") {
		t.Fatalf("reload --wait = %d %q, want 0 and reload complete", code, out)
	}
	// By the time the reply came, the new workers were all ready and current; the old ones
	// may still be draining.
	ready := 0
	for _, x := range s.status().Workers {
		if x.Role == "current" {
			if slicesContains(old, x.PID) {
				t.Errorf("old worker %d is still current", x.PID)
			}
			if x.State == "ready" {
				ready++
			}
		}
	}
	if ready != 3 {
		t.Errorf("after reload --wait returned, %d current workers ready, want 3", ready)
	}

	s.writeConfig(controlConfig + "[worker]\ncount = \"three\"\n")
	current := sortInts(workersOf(master))
	out, code = s.baton("reload", "-c", "baton.toml", "--wait")
	if code != 1 || !strings.Contains(out, "worker.count") {
		t.Fatalf("reload --wait with a bad config = %d %q, want 1 naming worker.count", code, out)
	}
	if got := sortInts(workersOf(master)); !equalInts(got, current) {
		t.Errorf("workers changed after a failed reload: %v, want %v", got, current)
	}
	s.onlyGeneration(1, 3)
}

// TestControlUpgradeAndRollback: `baton upgrade --wait` returns once the upgrade is
// committed; `baton rollback --wait` undoes an upgrade that is not committed yet.
func TestControlUpgradeAndRollback(t *testing.T) {
	s := newService(t)
	first := s.run(controlConfig + s.helloConfig(2, "\n[upgrade]\ncommit = \"auto\"\nsoak = \"0s\"\n"))
	out, code := s.baton("upgrade", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "upgrade committed") {
		t.Fatalf("upgrade --wait = %d %q", code, out)
	}
	waitFor(t, 20e9, func() bool { return !alive(first) }, "old master to exit")
	second := s.pid("baton.pid")
	if st := s.status(); st.PID != second || st.Generation != 2 || !st.Main {
		t.Errorf("status after upgrade: pid %d gen %d main %v, want pid %d gen 2 main", st.PID, st.Generation, st.Main, second)
	}

	s.writeConfig(controlConfig + s.helloConfig(2, "\n[upgrade]\ncommit = \"manual\"\n"))
	if _, code := s.baton("reload", "-c", "baton.toml", "--wait"); code != 0 {
		t.Fatal("reload to manual commit failed")
	}
	out, code = s.baton("upgrade", "-c", "baton.toml")
	if code != 0 || !strings.Contains(out, "upgrade started") {
		t.Fatalf("upgrade = %d %q", code, out)
	}
	s.waitLog(`msg="new master ready"`, 2)
	third := s.pid("baton.pid")
	if st := s.status(); st.PID != second || st.Upgrade == nil || st.Upgrade.NewPID != third {
		t.Errorf("status during the upgrade: %+v, want pid %d with an upgrade to %d", st, second, third)
	}
	out, code = s.baton("rollback", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "rolled back") {
		t.Fatalf("rollback --wait = %d %q", code, out)
	}
	if alive(third) {
		t.Errorf("new master %d still alive after rollback --wait", third)
	}
	if got := s.pidOf("baton.pid"); got != second {
		t.Errorf("baton.pid names %d after rollback, want %d", got, second)
	}
	s.onlyGeneration(2, 5)
}

// TestControlPeerCredentials: another user is turned away.
func TestControlPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to become another user")
	}
	s := newService(t)
	s.writeConfig(controlConfig + s.helloConfig(1, ""))
	s.start()
	s.waitLog(`msg="workers ready"`, 1)
	os.Chmod(s.path("baton.sock"), 0o777) // the file mode must not be what keeps them out
	cmd := exec.Command(bin.baton, "status", "--socket", s.path("baton.sock"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "uid 65534 may not control this master") {
		t.Errorf("status as nobody: %v %q, want permission denied", err, out)
	}
	s.waitLog(`msg="control connection refused"`, 1)
}

func (s *service) status() supervisor.Status {
	s.t.Helper()
	out, code := s.baton("status", "-c", "baton.toml", "--json")
	if code != 0 {
		s.t.Fatalf("status: %d %s", code, out)
	}
	var r supervisor.ControlReply
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status == nil {
		s.t.Fatalf("status: %v %q", err, out)
	}
	return *r.Status
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestControlStopDuringUpgrade: `baton stop --wait` (the units' ExecStop=) stops every
// generation gracefully, also while an upgrade is in flight, where QUIT would commit.
func TestControlStopDuringUpgrade(t *testing.T) {
	s := newService(t)
	old := s.run(controlConfig + s.helloConfig(2, "\n[upgrade]\ncommit = \"manual\"\n"))
	nw := s.upgrade(old, 1)
	out, code := s.baton("stop", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop --wait = %d %q", code, out)
	}
	if alive(nw) {
		t.Errorf("new master %d still alive after the old one stopped", nw)
	}
	s.waitExit(20e9)
	if n := len(lines(s.log(), `msg="upgrade committed`)); n != 0 {
		t.Errorf("stop committed the upgrade instead of stopping")
	}
	out, code = s.baton("stop", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "no master runs") {
		t.Errorf("stop with no master = %d %q, want 0 and 'no master runs'", code, out)
	}
}

// TestControlReloadClaimsSignalReload: under Type=notify-reload systemd sends SIGHUP, then
// runs ExecReload=baton reload --wait. The client must get that reload's result, not start
// a second reload.
func TestControlReloadClaimsSignalReload(t *testing.T) {
	s := newService(t)
	master := s.run(controlConfig + s.helloConfig(2, ""))

	s.writeConfig(controlConfig + "[worker]\ncount = \"bad\"\n")
	s.signal(master, syscall.SIGHUP)
	s.waitLog(`msg="reload failed`, 1)
	out, code := s.baton("reload", "-c", "baton.toml", "--wait")
	if code != 1 || !strings.Contains(out, "worker.count") {
		t.Errorf("reload --wait after a failed SIGHUP reload = %d %q, want 1 with its reason", code, out)
	}
	if n := len(lines(s.log(), `msg="reload: reading the config"`)); n != 1 {
		t.Errorf("%d reloads started, want 1", n)
	}

	s.writeConfig(controlConfig + s.helloConfig(2, ""))
	s.signal(master, syscall.SIGHUP)
	s.waitLog(`msg="reload complete"`, 1)
	out, code = s.baton("reload", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "reload complete") {
		t.Errorf("reload --wait after a SIGHUP reload = %d %q", code, out)
	}
	if n := len(lines(s.log(), `msg="reload: reading the config"`)); n != 2 {
		t.Errorf("%d reloads started, want 2", n)
	}
	// The result is claimed once: the next request starts a reload of its own.
	if _, code = s.baton("reload", "-c", "baton.toml", "--wait"); code != 0 {
		t.Errorf("a second reload --wait failed")
	}
	if n := len(lines(s.log(), `msg="reload: reading the config"`)); n != 3 {
		t.Errorf("%d reloads started, want 3", n)
	}
}

// TestControlSocketFollowsTheConfig (issue 9): `baton reload|upgrade|stop -c FILE` (the
// units' ExecReload= and ExecStop=) read control_socket from the file as it is now, while
// the master listens where the file said when it started. Under load: an admin moves
// control_socket, then reloads (found through $RUNTIME_DIRECTORY/control.sock, on which a
// master under systemd always listens too; the master moves to the new path), upgrades
// (the new master moves to the path its config names when it takes charge), and stops with
// neither path right but systemd's $MAINPID (QUIT to the main process).
func TestControlSocketFollowsTheConfig(t *testing.T) {
	s := newService(t)
	rt := s.path("run")
	if err := os.Mkdir(rt, 0o750); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNTIME_DIRECTORY", rt) // the master's, and the CLI's, as systemd sets both
	sock := func(name string) string { return "control_socket = \"" + name + "\"\n" }
	hello := s.helloConfig(2, "\n[upgrade]\ncommit = \"auto\"\nsoak = \"0s\"\n")
	first := s.run(sock("a.sock") + hello)
	for _, p := range []string{"a.sock", "run/control.sock"} {
		if _, code := s.baton("status", "--socket", s.path(p)); code != 0 {
			t.Fatalf("no master answers on %s", p)
		}
	}
	stop := s.load(4)

	s.writeConfig(sock("b.sock") + hello)
	out, code := s.baton("reload", "-c", "baton.toml", "--wait")
	if code != 0 {
		t.Fatalf("reload --wait after control_socket moved = %d %q", code, out)
	}
	if st := s.status(); st.PID != first {
		t.Fatalf("status -c after the reload: pid %d, want %d", st.PID, first)
	}
	if _, err := os.Lstat(s.path("a.sock")); !os.IsNotExist(err) {
		t.Errorf("the old control socket a.sock is still there after the reload: %v", err)
	}

	s.writeConfig(sock("c.sock") + hello)
	out, code = s.baton("upgrade", "-c", "baton.toml", "--wait")
	if code != 0 || !strings.Contains(out, "upgrade committed") {
		t.Fatalf("upgrade --wait after control_socket moved = %d %q", code, out)
	}
	waitFor(t, 20e9, func() bool { return !alive(first) }, "the old master to exit")
	second := s.pid("baton.pid")
	waitFor(t, 10e9, func() bool {
		_, code := s.baton("status", "--socket", s.path("c.sock"))
		return code == 0
	}, "the new master on c.sock")
	if st := s.status(); st.PID != second || !st.Main {
		t.Fatalf("status -c after the upgrade: %d main %v, want %d", st.PID, st.Main, second)
	}

	n, errs := stop()
	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(errs), n, errs[0])
	}

	// Neither the file's path nor a runtime directory: only systemd's $MAINPID names it.
	s.writeConfig(sock("d.sock") + hello)
	cmd := exec.Command(bin.baton, "stop", "-c", "baton.toml", "--wait")
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY=", "MAINPID="+strconv.Itoa(second))
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "sent QUIT to the main process") || !strings.Contains(string(b), "exited") {
		t.Fatalf("stop --wait with $MAINPID only: %v %q", err, b)
	}
	if alive(second) {
		t.Fatalf("master %d alive after stop --wait returned", second)
	}
	s.waitExit(20e9)
}
