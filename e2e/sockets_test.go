package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSocketsOtherUser: workers running as nobody reach the master's notify socket (they
// become ready through it); another local user reaches neither the notify socket nor the
// control socket (in a directory anyone may enter), and the master logs nothing about it;
// after a reload to workers as daemon (another group), those become ready too.
func TestSocketsOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to become other users")
	}
	s := newService(t)
	master := s.run(controlConfig + s.helloConfig(2, "user = \"nobody\"\n"))
	// The workers are nobody's and were ready: they reached the socket.
	addr := workerNotifySocket(t, master)
	if !filepath.IsAbs(addr) {
		t.Fatalf("NOTIFY_SOCKET=%q, want a path (an abstract socket lets anyone in)", addr)
	}
	before := s.log()
	reach := func(cred *syscall.Credential) (string, error) {
		cmd := exec.Command(bin.reach, "-notify", addr, "-control", s.path("baton.sock"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := reach(&syscall.Credential{Uid: 4242, Gid: 4242})
	if err != nil {
		t.Fatalf("reach as uid 4242: %v %s", err, out)
	}
	for _, want := range []string{"notify: errno EACCES", "control: errno EACCES"} {
		if !strings.Contains(out, want) {
			t.Errorf("as uid 4242: %q, want %q", out, want)
		}
	}

	// Root (the master's user) does reach both: the refusal above is the permissions'.
	if out, err := reach(nil); err != nil || out != "notify: ok\ncontrol: ok\n" {
		t.Errorf("reach as root: %v %q, want both ok", err, out)
	}
	s.waitLog(`msg="notify message from a process that is not a worker dropped"`, 1)
	after := strings.TrimPrefix(s.log(), before)
	if n := len(lines(after, `control connection refused`)); n != 0 {
		t.Errorf("the master logged %d refused control connections, want none", n)
	}
	s.onlyGeneration(1, 3)

	// A reload to workers of another user and group (daemon): they reach the socket
	// through a directory of their own group, and become ready.
	s.writeConfig(controlConfig + s.helloConfig(2, "user = \"daemon\"\n"))
	if out, code := s.baton("reload", "-c", "baton.toml", "--wait"); code != 0 || !strings.Contains(out, "reload complete") {
		t.Fatalf("reload to workers as daemon: %d %q", code, out)
	}
	s.onlyGeneration(1, 3)
}
