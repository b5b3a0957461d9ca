//go:build linux

package supervisor

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/sdnotify"
)

// TestNotifyDir: the socket is reachable through each group's directory, the
// directories have the modes and groups that keep other users out, and Close removes
// everything.
func TestNotifyDir(t *testing.T) {
	tmp := t.TempDir()
	n, err := openNotify(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	gid := uint32(os.Getgid())
	other := gid
	if os.Getuid() == 0 {
		other = 65534 // root may give a directory to any group
	}
	for _, g := range []uint32{gid, other} {
		p, err := n.addrFor(g)
		if err != nil {
			t.Fatalf("addrFor(%d): %v", g, err)
		}
		if again, _ := n.addrFor(g); again != p {
			t.Errorf("addrFor(%d) = %q, then %q", g, p, again)
		}
		c, err := sdnotify.Open(p)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		if err := c.Notify("STATUS=via " + p); err != nil {
			t.Fatalf("send through %s: %v", p, err)
		}
		c.Close()
		got := make(chan sdnotify.Message, 1)
		go func() { m, _ := n.Receive(); got <- m }()
		select {
		case m := <-got:
			if s, _ := m.Get("STATUS"); s != "via "+p || int(m.PID) != os.Getpid() {
				t.Errorf("received %+v, want STATUS=via %s from pid %d", m, p, os.Getpid())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing received through %s", p)
		}
	}
	want := []struct {
		path string
		mode os.FileMode
		gid  uint32
	}{
		{n.dir, os.ModeDir | 0o711, gid},
		{filepath.Join(n.dir, "master"), os.ModeDir | 0o700, gid},
		{filepath.Dir(n.paths[other]), os.ModeDir | 0o710, other},
		{n.Server.Addr(), os.ModeSocket | 0o666, gid},
	}
	for _, w := range want {
		fi, err := os.Stat(w.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != w.mode || st.Gid != w.gid || int(st.Uid) != os.Getuid() {
			t.Errorf("%s: %v uid %d gid %d, want %v uid %d gid %d", w.path, fi.Mode(), st.Uid, st.Gid, w.mode, os.Getuid(), w.gid)
		}
	}
	dir := n.dir
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("after Close, %s: %v, want it gone", dir, err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
