//go:build linux

package fdstore

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The kernel names the file a socket is bound to.
func TestBoundFile(t *testing.T) {
	{
		dir := t.TempDir()
		path := filepath.Join(dir, "x.sock")
		l := mustOpen(t, Spec{Name: "x", Network: "unix", Address: path})
		ino, dev, err := boundFile(int(l.File.Fd()))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if uint64(ino) != st.Ino&(1<<32-1) || dev != uint64(st.Dev) {
			t.Errorf("%s: kernel says %d on %d:%d, stat says %d on %d:%d",
				dir, ino, unix.Major(dev), unix.Minor(dev), st.Ino, unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)))
		}
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		mdev, err := mountDev(pfd)
		unix.Close(pfd)
		if err != nil || mdev != uint64(st.Dev) {
			t.Errorf("%s: mountinfo says %d:%d (%v), stat says %d:%d",
				dir, unix.Major(mdev), unix.Minor(mdev), err, unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)))
		}
	}

	abstract := mustOpen(t, Spec{Name: "x", Network: "unix", Address: "@fdstore-bound-test"})
	if _, _, err := boundFile(int(abstract.File.Fd())); err == nil {
		t.Error("an abstract socket is bound to a file")
	}
	tcp := mustOpen(t, Spec{Name: "x", Network: "tcp", Address: "127.0.0.1:0"})
	if _, _, err := boundFile(int(tcp.File.Fd())); err == nil {
		t.Error("a tcp socket is bound to a file")
	}
}
