//go:build linux

package sdnotify

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNewUnset(t *testing.T) {
	setOrUnset(t, "NOTIFY_SOCKET", "-")
	n, err := New()
	if n != nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New() = %v, %v; want nil and os.ErrNotExist", n, err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("nil Notify = %v, want nil", err)
	}
}

func TestNilNotifier(t *testing.T) {
	var n *Notifier
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, err := range map[string]error{
		"Notify":          n.Notify(Ready),
		"NotifyWithFDs":   n.NotifyWithFDs([]int{0}, FDStore),
		"NotifyWithFiles": n.NotifyWithFiles([]*os.File{r}, FDStore),
		"Barrier":         n.Barrier(time.Nanosecond),
		"Close":           n.Close(),
	} {
		if err != nil {
			t.Errorf("nil %s = %v, want nil", name, err)
		}
	}
	if got := n.Addr(); got != "" {
		t.Errorf("nil Addr() = %q, want \"\"", got)
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name  string
		state []string
		want  string
	}{
		{"ready", []string{Ready}, "READY=1"},
		{"joined by newline", []string{Ready, Status("up\nfine")}, "READY=1\nSTATUS=up fine"},
		{"reload", []string{Reloading, MonotonicUsec(42 * time.Microsecond)}, "RELOADING=1\nMONOTONIC_USEC=42"},
		{"multi-line string", []string{"STOPPING=1\nSTATUS=bye"}, "STOPPING=1\nSTATUS=bye"},
		{"handover", []string{MainPID(77)}, "MAINPID=77"},
	}
	for _, abstract := range []bool{false, true} {
		fake := newFakeSystemd(t, abstract)
		t.Setenv("NOTIFY_SOCKET", fake.addr)
		n, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if got := n.Addr(); got != fake.addr {
			t.Errorf("Addr() = %q, want %q", got, fake.addr)
		}
		for _, tt := range tests {
			t.Run(fake.addr[:1]+"/"+tt.name, func(t *testing.T) {
				if err := n.Notify(tt.state...); err != nil {
					t.Fatal(err)
				}
				got, fds := fake.recv()
				if got != tt.want || len(fds) != 0 {
					t.Errorf("received %q with %d fds, want %q with none", got, len(fds), tt.want)
				}
			})
		}
	}
}

func TestNotifyErrors(t *testing.T) {
	fake := newFakeSystemd(t, false)
	n, err := Open(fake.addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(); err == nil {
		t.Error("Notify() with no state = nil, want an error")
	}
	if err := n.NotifyWithFDs(make([]int, maxFDs+1), FDStore); err == nil {
		t.Errorf("NotifyWithFDs with %d fds = nil, want an error", maxFDs+1)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Notify after Close = %v, want net.ErrClosed", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	nobody, err := Open(filepath.Join(t.TempDir(), "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	defer nobody.Close()
	if err := nobody.Notify(Ready); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Notify to a missing socket = %v, want ENOENT", err)
	}

	if _, err := Open("relative/notify"); !errors.Is(err, ErrBadAddr) {
		t.Errorf("Open(relative) = %v, want ErrBadAddr", err)
	}
}

func TestNotifyWithFDs(t *testing.T) {
	fake := newFakeSystemd(t, false)
	n, err := Open(fake.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	name, err := FDName("web")
	if err != nil {
		t.Fatal(err)
	}
	sent := []*os.File{r, w}

	t.Run("fds", func(t *testing.T) {
		fds := []int{fdOf(t, r), fdOf(t, w)}
		if err := n.NotifyWithFDs(fds, FDStore, name); err != nil {
			t.Fatal(err)
		}
		checkFDMessage(t, fake, "FDSTORE=1\nFDNAME=web", sent)
	})
	t.Run("files", func(t *testing.T) {
		if err := n.NotifyWithFiles(sent, FDStoreRemove, name); err != nil {
			t.Fatal(err)
		}
		checkFDMessage(t, fake, "FDSTOREREMOVE=1\nFDNAME=web", sent)
		// File.Fd would have made the pipe blocking; NotifyWithFiles must not.
		flags, err := unix.FcntlInt(uintptr(fdOf(t, r)), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK == 0 {
			t.Errorf("pipe F_GETFL after NotifyWithFiles = %#x, %v; want O_NONBLOCK", flags, err)
		}
	})
	t.Run("no fds", func(t *testing.T) {
		if err := n.NotifyWithFDs(nil, Ready); err != nil {
			t.Fatal(err)
		}
		checkFDMessage(t, fake, "READY=1", nil)
	})
}

// checkFDMessage receives one datagram on fake and checks its text and that
// its descriptors are copies of want, in order.
func checkFDMessage(t *testing.T, fake *fakeSystemd, wantMsg string, want []*os.File) {
	t.Helper()
	got, fds := fake.recv()
	defer closeFDs(fds)
	if got != wantMsg {
		t.Errorf("received %q, want %q", got, wantMsg)
	}
	if len(fds) != len(want) {
		t.Fatalf("received %d fds, want %d", len(fds), len(want))
	}
	for i, fd := range fds {
		if !sameFile(t, fd, fdOf(t, want[i])) {
			t.Errorf("fd %d is not a copy of %s", i, want[i].Name())
		}
	}
}

// fdOf returns f's descriptor without File.Fd, which would make it blocking.
func fdOf(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestBarrier(t *testing.T) {
	fake := newFakeSystemd(t, true)
	n, err := Open(fake.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	t.Run("answered", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- n.Barrier(0) }() // no limit: only the answer ends it
		got, fds := fake.recv()
		if got != BarrierMsg || len(fds) != 1 {
			closeFDs(fds)
			t.Fatalf("received %q with %d fds, want %q with 1", got, len(fds), BarrierMsg)
		}
		checkPipeWriteEnd(t, fds[0])
		unix.Close(fds[0]) // the answer
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Barrier = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Barrier did not return after the fake closed the fd")
		}
	})

	t.Run("fd held", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- n.Barrier(50 * time.Millisecond) }()
		got, fds := fake.recv()
		defer closeFDs(fds) // held until Barrier has given up
		if got != BarrierMsg || len(fds) != 1 {
			t.Fatalf("received %q with %d fds, want %q with 1", got, len(fds), BarrierMsg)
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Barrier = %v, want os.ErrDeadlineExceeded", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Barrier did not time out")
		}
	})

	t.Run("closed", func(t *testing.T) {
		closed, err := Open(fake.addr)
		if err != nil {
			t.Fatal(err)
		}
		closed.Close()
		if err := closed.Barrier(time.Second); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Barrier after Close = %v, want net.ErrClosed", err)
		}
	})
}

// checkPipeWriteEnd checks that fd is the write end of a pipe.
func checkPipeWriteEnd(t *testing.T, fd int) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO || flags&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("barrier fd: mode %#o flags %#x, want a pipe's write end", st.Mode, flags)
	}
}

func TestNotifierCloseOnExec(t *testing.T) {
	fake := newFakeSystemd(t, false)
	n, err := Open(fake.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	flags, err := unix.FcntlInt(uintptr(fdOf(t, n.file)), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("notifier socket F_GETFD = %#x, %v; want FD_CLOEXEC", flags, err)
	}
	if !strings.HasPrefix(n.file.Name(), "sdnotify:") {
		t.Errorf("socket file name %q", n.file.Name())
	}
}
