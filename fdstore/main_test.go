//go:build linux

package fdstore

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary re-execute itself as a helper process:
// FDSTORE_TEST_CHILD names the helper (see activation_test.go).
func TestMain(m *testing.M) {
	switch os.Getenv("FDSTORE_TEST_CHILD") {
	case "":
		os.Exit(m.Run())
	case "activation":
		os.Exit(activationChild())
	default:
		os.Exit(2)
	}
}

// fdCount is the number of open fds of this process.
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkNoLeak fails t unless the fd count is back to want.
func checkNoLeak(t *testing.T, want int) {
	t.Helper()
	if got := fdCount(t); got != want {
		t.Errorf("open fds: got %d, want %d (leak)", got, want)
	}
}

// cloexec reports whether fd has close-on-exec set.
func cloexec(t *testing.T, fd uintptr) bool {
	t.Helper()
	flags, err := unix.FcntlInt(fd, unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %d: %v", fd, err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// mustOpen opens s and closes it when t ends.
func mustOpen(t *testing.T, s Spec) *Listener {
	t.Helper()
	l, err := Open(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// devNull opens /dev/null as a stand-in fd that is not a socket, closed
// when t ends at the latest.
func devNull(t *testing.T, name string, src Source) *Listener {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Name: name, Source: src, File: f}
	t.Cleanup(func() { l.Close() })
	return l
}
