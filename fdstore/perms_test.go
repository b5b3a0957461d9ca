//go:build linux

package fdstore

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// statPerms returns the type, permission bits and owner of the file at
// path itself (never what a symlink points to).
func statPerms(t *testing.T, path string) (typ, perm os.FileMode, uid, gid uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode().Type(), fi.Mode().Perm(), st.Uid, st.Gid
}

// received makes l look like a listener from the FD store or an old
// master, which knows nothing of its socket file.
func received(l *Listener) *Listener {
	l.sock = sockFile{}
	return l
}

// The socket file is swapped between Open and a reload that changes its
// mode: nothing may change, and Resolve must fail (issue 8).
func TestResolveSocketFileSwapped(t *testing.T) {
	swaps := []struct {
		name string
		// swap replaces the socket file at path; it returns the file
		// that must keep its mode (a symlink's target, or path).
		swap func(t *testing.T, path string) string
	}{
		{"symlink to a file", swapSymlink},
		{"regular file", swapRegular},
		{"another socket", swapSocket},
		{"hard link to another socket", swapHardLink},
	}
	origins := []struct {
		name  string
		owner string // Open with an owner records the file
		recv  bool   // the listener came from the FD store
	}{
		{"opened with owner", "65534", false},
		{"opened", "", false},
		{"from the FD store", "", true},
	}
	for _, sw := range swaps {
		for _, o := range origins {
			t.Run(sw.name+", "+o.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "admin.sock")
				s := Spec{Name: "admin", Network: "unix", Address: path, Mode: 0o600, Owner: o.owner}
				l := mustOpen(t, s)
				if o.recv {
					received(l)
				}
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				victim := sw.swap(t, path)
				typ, perm, uid, gid := statPerms(t, victim)
				pathTyp, _, _, _ := statPerms(t, path)

				s.Mode, s.Owner, s.Group = 0o666, "0", "65534"
				use, unused, err := Resolve([]Spec{s}, []*Listener{l})
				typ2, perm2, uid2, gid2 := statPerms(t, victim)
				if typ2 != typ || perm2 != perm || uid2 != uid || gid2 != gid {
					t.Errorf("%s changed: %v %v %d:%d, was %v %v %d:%d", victim, typ2, perm2, uid2, gid2, typ, perm, uid, gid)
				}
				if got, _, _, _ := statPerms(t, path); got != pathTyp {
					t.Errorf("%s is now a %v, was %v", path, got, pathTyp)
				}
				if !errors.Is(err, ErrNotBoundFile) {
					closeAll(use)
					t.Fatalf("Resolve: got %v, want ErrNotBoundFile", err)
				}
				if use != nil || unused != nil {
					t.Errorf("Resolve returned listeners with an error: %v, %v", use, unused)
				}
				t.Log(err)
				if !cloexec(t, l.File.Fd()) { // the old generation's listener is still open
					t.Errorf("%v lost close-on-exec", l)
				}
			})
		}
	}
}

// swapSymlink puts at path a symlink to a 0640 file (standing for
// /etc/shadow) and returns the file.
func swapSymlink(t *testing.T, path string) string {
	target := filepath.Join(filepath.Dir(path), "shadow")
	if err := os.WriteFile(target, []byte("root:x:"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return target
}

func swapRegular(t *testing.T, path string) string {
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// swapSocket binds another socket at path.
func swapSocket(t *testing.T, path string) string {
	mustOpen(t, Spec{Name: "other", Network: "unix", Address: path, Mode: 0o600})
	return path
}

// swapHardLink links another socket (standing for one of the system's)
// to path.
func swapHardLink(t *testing.T, path string) string {
	other := filepath.Join(filepath.Dir(path), "system.sock")
	mustOpen(t, Spec{Name: "other", Network: "unix", Address: other, Mode: 0o600})
	if err := os.Link(other, path); err != nil {
		t.Fatal(err)
	}
	return other
}

// A reload that changes nothing touches nothing, whatever is at the path.
func TestResolveUnchangedPermsTouchNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")
	s := Spec{Name: "admin", Network: "unix", Address: path, Mode: 0o600}
	l := mustOpen(t, s)
	os.Remove(path)
	victim := swapSymlink(t, path)
	use, _, err := Resolve([]Spec{s}, []*Listener{l})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(use) != 1 || use[0] != l {
		t.Errorf("use: got %v, want the listener", use)
	}
	if _, perm, _, _ := statPerms(t, victim); perm != 0o640 {
		t.Errorf("%s: mode %v, want 0640 kept", victim, perm)
	}
}

// Several reused sockets: all are checked before any is changed.
func TestResolveChecksAllBeforeChanging(t *testing.T) {
	dir := t.TempDir()
	a := Spec{Name: "a", Network: "unix", Address: filepath.Join(dir, "a.sock"), Mode: 0o600}
	b := Spec{Name: "b", Network: "unix", Address: filepath.Join(dir, "b.sock"), Mode: 0o600}
	la, lb := mustOpen(t, a), mustOpen(t, b)
	os.Remove(b.Address)
	swapRegular(t, b.Address)
	a.Mode, b.Mode = 0o660, 0o660
	if _, _, err := Resolve([]Spec{a, b}, []*Listener{la, lb}); !errors.Is(err, ErrNotBoundFile) {
		t.Fatalf("Resolve: got %v, want ErrNotBoundFile", err)
	}
	if _, perm, _, _ := statPerms(t, a.Address); perm != 0o600 {
		t.Errorf("%s: mode %v, want 0600 kept", a.Address, perm)
	}
}

// A reload changes the mode and owner of the real socket file, whether
// baton opened it in this process or got it back from the FD store.
func TestResolveChangesPerms(t *testing.T) {
	for _, fromStore := range []bool{false, true} {
		name := "opened"
		if fromStore {
			name = "from the FD store"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin.sock")
			s := Spec{Name: "admin", Network: "unix", Address: path, Mode: 0o600}
			l := mustOpen(t, s)
			if fromStore {
				received(l)
			}
			steps := []struct {
				mode         os.FileMode
				owner, group string
				uid, gid     uint32
			}{
				{0o660, "", "65534", 0, 65534},
				{0o640, "65534", "0", 65534, 0},
				{0, "0", "", 0, 0}, // mode 0 keeps the mode
			}
			want := os.FileMode(0o600)
			for _, st := range steps {
				s.Mode, s.Owner, s.Group = st.mode, st.owner, st.group
				if st.mode != 0 {
					want = st.mode
				}
				use, _, err := Resolve([]Spec{s}, []*Listener{l})
				if err != nil {
					t.Fatalf("Resolve %+v: %v", s, err)
				}
				if use[0] != l {
					t.Fatalf("listener not reused")
				}
				typ, perm, uid, gid := statPerms(t, path)
				if typ != os.ModeSocket || perm != want || uid != st.uid || gid != st.gid {
					t.Errorf("after %+v: %v %v %d:%d, want socket %v %d:%d", s, typ, perm, uid, gid, want, st.uid, st.gid)
				}
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.Close()
		})
	}
}

// A listener that really came over Send/Receive gets its mode changed: the
// kernel names its file (sock_diag).
func TestResolveChangesPermsAfterReceive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	s := Spec{Name: "admin", Network: "unix", Address: path, Mode: 0o600}
	sent := mustOpen(t, s)
	a, b := socketPair(t, unix.SOCK_SEQPACKET)
	if err := Send(a, []*Listener{sent}); err != nil {
		t.Fatal(err)
	}
	got, err := Receive(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAll(got) })
	s.Mode = 0o666
	if _, _, err := Resolve([]Spec{s}, got); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if _, perm, _, _ := statPerms(t, path); perm != 0o666 {
		t.Errorf("mode: got %v, want 0666", perm)
	}
}

// Open with an owner and group sets them; it records the file.
func TestOpenUnixOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	l := mustOpen(t, Spec{Name: "admin", Network: "unix", Address: path, Mode: 0o660, Owner: "65534", Group: "65534"})
	typ, perm, uid, gid := statPerms(t, path)
	if typ != os.ModeSocket || perm != 0o660 || uid != 65534 || gid != 65534 {
		t.Errorf("got %v %v %d:%d, want socket 0660 65534:65534", typ, perm, uid, gid)
	}
	fi, _ := os.Lstat(path)
	st := fi.Sys().(*syscall.Stat_t)
	if l.sock.dev != uint64(st.Dev) || l.sock.ino != st.Ino {
		t.Errorf("recorded file %d:%d, the socket file is %d:%d", l.sock.dev, l.sock.ino, st.Dev, st.Ino)
	}
}

// Open's own window: the file is swapped between bind and the chown. The
// chown must not reach the file swapped in.
func TestPlanPermsSwappedAfterBind(t *testing.T) {
	for _, swap := range []func(*testing.T, string) string{swapSymlink, swapSocket} {
		path := filepath.Join(t.TempDir(), "x.sock")
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := bindUnix(fd, path, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
		victim := swap(t, path)
		_, perm, uid, gid := statPerms(t, victim)
		s := Spec{Name: "x", Network: "unix", Address: path, Mode: 0o600, Owner: "65534", Group: "65534"}
		var sf sockFile
		c, err := planPerms(fd, s, &sf)
		if err == nil && c != nil {
			err = c.apply()
		}
		if !errors.Is(err, ErrNotBoundFile) {
			t.Errorf("planPerms: got %v, want ErrNotBoundFile", err)
		}
		if _, perm2, uid2, gid2 := statPerms(t, victim); perm2 != perm || uid2 != uid || gid2 != gid {
			t.Errorf("%s changed: %v %d:%d, was %v %d:%d", victim, perm2, uid2, gid2, perm, uid, gid)
		}
		if sf != (sockFile{}) {
			t.Errorf("recorded %+v after a refusal", sf)
		}
	}
}

// Without sock_diag, a file that needs no change is fine; one that does
// is refused with a clear error, and left as it is.
func TestPermsWithoutSockDiag(t *testing.T) {
	old := askBound
	askBound = func(int) (uint32, uint64, error) {
		return 0, 0, os.NewSyscallError("socket NETLINK_SOCK_DIAG", unix.EPROTONOSUPPORT)
	}
	t.Cleanup(func() { askBound = old })
	dir := t.TempDir()

	owned := Spec{Name: "x", Network: "unix", Address: filepath.Join(dir, "owned.sock"), Owner: "65534"}
	if l, err := Open(owned); err == nil {
		l.Close()
		t.Errorf("Open with an owner and no sock_diag succeeded")
	} else {
		t.Log(err)
	}
	if _, err := os.Lstat(owned.Address); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind (%v)", err)
	}

	s := Spec{Name: "admin", Network: "unix", Address: filepath.Join(dir, "admin.sock"), Mode: 0o600}
	l := received(mustOpen(t, s)) // a mode alone needs no sock_diag
	if _, _, err := Resolve([]Spec{s}, []*Listener{l}); err != nil {
		t.Errorf("Resolve, nothing to change: %v", err)
	}
	s.Mode = 0o666
	if _, _, err := Resolve([]Spec{s}, []*Listener{l}); err == nil || errors.Is(err, ErrNotBoundFile) {
		t.Errorf("Resolve, mode to change: got %v, want the sock_diag error", err)
	}
	if _, perm, _, _ := statPerms(t, s.Address); perm != 0o600 {
		t.Errorf("mode: got %v, want 0600 kept", perm)
	}
}

// bindUnix makes the file with its mode, whatever the process umask, and
// leaves the process umask alone.
func TestBindUnixMode(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	for _, mode := range []os.FileMode{0o600, 0o660, 0o666, 0o777, 0o700} {
		path := filepath.Join(t.TempDir(), "x.sock")
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = bindUnix(fd, path, mode)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		if _, perm, _, _ := statPerms(t, path); perm != mode {
			t.Errorf("mode %v: born %v", mode, perm)
		}
		if got := unix.Umask(0o022); got != 0o022 {
			t.Errorf("mode %v: process umask became %#o", mode, got)
		}
	}
}
