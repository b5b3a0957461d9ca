package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/baton-supervisor/baton/sdnotify"
)

// reachMain is the helper "reach": another local user trying the master's sockets. It
// sends STATUS= to $REACH_NOTIFY and connects to $REACH_CONTROL, and prints one line for
// each: "notify: ok" or "notify: <error>", "control: ok" or "control: <error>".
func reachMain() {
	if addr := os.Getenv("REACH_NOTIFY"); addr != "" {
		n, err := sdnotify.Open(addr)
		if err == nil {
			err = n.Notify("STATUS=intruder")
			n.Close()
		}
		report("notify", err)
	}
	if path := os.Getenv("REACH_CONTROL"); path != "" {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
		}
		report("control", err)
	}
}

func report(what string, err error) {
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Printf("%s: ok\n", what)
	case errors.As(err, &errno):
		fmt.Printf("%s: %s\n", what, errno.Error())
	default:
		fmt.Printf("%s: %v\n", what, err)
	}
}

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
	var addr string
	waitFor(t, 20e9, func() bool {
		for _, w := range workersOf(master) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", w))
			for _, kv := range strings.Split(string(b), "\x00") {
				if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
					addr = v
					return true
				}
			}
		}
		return false
	}, "a worker of %d to show its NOTIFY_SOCKET", master)
	if !filepath.IsAbs(addr) {
		t.Fatalf("NOTIFY_SOCKET=%q, want a path (an abstract socket lets anyone in)", addr)
	}
	before := s.log()
	// This test binary, where another user may run it (go test's directory is 0700).
	self := filepath.Join(bin.dir, "reach")
	if b, err := os.ReadFile(bin.self); err != nil || os.WriteFile(self, b, 0o755) != nil {
		t.Fatalf("copy %s to %s: %v", bin.self, self, err)
	}

	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "BATON_E2E_HELPER=reach", "REACH_NOTIFY="+addr, "REACH_CONTROL="+s.path("baton.sock"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reach as uid 4242: %v %s", err, out)
	}
	for _, want := range []string{"notify: permission denied", "control: permission denied"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("as uid 4242: %q, want %q", out, want)
		}
	}

	// Root (the master's user) does reach both: the refusal above is the permissions'.
	cmd = exec.Command(self)
	cmd.Env = append(os.Environ(), "BATON_E2E_HELPER=reach", "REACH_NOTIFY="+addr, "REACH_CONTROL="+s.path("baton.sock"))
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "notify: ok\ncontrol: ok\n" {
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
