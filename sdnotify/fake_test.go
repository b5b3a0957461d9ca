//go:build linux

package sdnotify

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeSystemd is a service manager's notify socket for tests: a blocking
// unixgram socket whose reads give up after ten seconds, so a broken test
// fails instead of hanging.
type fakeSystemd struct {
	t    *testing.T
	addr string
	fd   int
}

// newFakeSystemd listens at a path in t.TempDir(), or at a unique abstract
// name if abstract is true.
func newFakeSystemd(t *testing.T, abstract bool) *fakeSystemd {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "notify")
	if abstract {
		addr = fmt.Sprintf("@baton-test/%d/%s", os.Getpid(), rand.Text())
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		t.Fatalf("bind %q: %v", addr, err)
	}
	return &fakeSystemd{t: t, addr: addr, fd: fd}
}

// recv reads one datagram and returns its text and the descriptors that came
// with it, which the caller must close. Call it from the test goroutine.
func (f *fakeSystemd) recv() (string, []int) {
	f.t.Helper()
	buf := make([]byte, MaxMessageSize+1)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, flags, _, err := unix.Recvmsg(f.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		f.t.Fatalf("fake systemd: recvmsg: %v", err)
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		f.t.Fatalf("fake systemd: truncated, flags %#x", flags)
	}
	_, fds, err := parseControl(oob[:oobn])
	if err != nil {
		f.t.Fatalf("fake systemd: control data: %v", err)
	}
	return string(buf[:n]), fds
}

// sameFile reports whether descriptors a and b refer to the same open file.
func sameFile(t *testing.T, a, b int) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// countFDs returns how many descriptors this process has open.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
