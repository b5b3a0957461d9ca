//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv switches the test binary into a helper process: a worker that
// sends READY=1 to $NOTIFY_SOCKET, waits on a barrier and exits.
const helperEnv = "SDNOTIFY_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "worker" {
		os.Exit(helperWorker())
	}
	os.Exit(m.Run())
}

func helperWorker() int {
	n, err := New()
	if err == nil {
		err = n.Notify(Ready, "HELPER_PID="+strconv.Itoa(os.Getpid()))
	}
	if err == nil {
		err = n.Barrier(10 * time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// newServerPair returns a Server on an abstract name and a Notifier for it.
func newServerPair(t *testing.T) (*Server, *Notifier) {
	t.Helper()
	s, err := Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n, err := Open(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return s, n
}

func TestServerReceive(t *testing.T) {
	s, n := newServerPair(t)
	if want := fmt.Sprintf("@baton/%d/", os.Getpid()); !strings.HasPrefix(s.Addr(), want) {
		t.Errorf("Addr() = %q, want prefix %q", s.Addr(), want)
	}
	self := Message{PID: int32(os.Getpid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	tests := []struct {
		name  string
		state []string
		want  []Field
	}{
		{"ready", []string{Ready, Status("2 workers")}, []Field{{"READY", "1"}, {"STATUS", "2 workers"}}},
		{"empty lines", []string{"", Stopping, ""}, []Field{{"STOPPING", "1"}}},
		{"largest", []string{"STATUS=" + strings.Repeat("x", MaxMessageSize-len("STATUS="))},
			[]Field{{"STATUS", strings.Repeat("x", MaxMessageSize-len("STATUS="))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := n.Notify(tt.state...); err != nil {
				t.Fatal(err)
			}
			got, err := s.Receive()
			if err != nil {
				t.Fatal(err)
			}
			want := self
			want.Fields = tt.want
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Receive() = %+.60v\nwant %+.60v", got, want)
			}
		})
	}
}

func TestServerRejects(t *testing.T) {
	s, n := newServerPair(t)
	tests := []struct {
		name  string
		state string
		want  error
	}{
		{"malformed", "hello", ErrMalformed},
		{"too long", "STATUS=" + strings.Repeat("x", MaxMessageSize), ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := n.Notify(tt.state); err != nil {
				t.Fatal(err)
			}
			m, err := s.Receive()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Receive() error = %v, want %v", err, tt.want)
			}
			if m.PID != int32(os.Getpid()) || m.Fields != nil {
				t.Errorf("Receive() with error = %+v, want our pid and no fields", m)
			}
			// The Server goes on after a bad message.
			if err := n.Notify(Ready); err != nil {
				t.Fatal(err)
			}
			if m, err := s.Receive(); err != nil || len(m.Fields) != 1 {
				t.Errorf("Receive() after a rejected message = %+v, %v", m, err)
			}
		})
	}
}

func TestServerNoCredentials(t *testing.T) {
	s, n := newServerPair(t)
	var serr error
	err := s.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 0)
	})
	if err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Receive(); !errors.Is(err, ErrNoCredentials) || m.PID != 0 || m.Fields != nil {
		t.Errorf("Receive() = %+v, %v; want ErrNoCredentials", m, err)
	}
}

func TestServerClosesFDs(t *testing.T) {
	tests := []struct {
		name    string
		nfds    int
		oobFDs  int // room for this many fds in the Server's control buffer
		wantErr error
		wantFDs int
	}{
		{"three", 3, maxFDs, nil, 3},
		{"most in one message", maxFDs, maxFDs, nil, maxFDs},
		{"control data truncated", 4, 2, ErrTruncated, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, n := newServerPair(t)
			s.oob = make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*tt.oobFDs))
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			before := countFDs(t)
			fds := make([]int, tt.nfds)
			for i := range fds {
				fds[i] = fdOf(t, r)
			}
			if err := n.NotifyWithFDs(fds, Ready); err != nil {
				t.Fatal(err)
			}
			r.Close() // only the copies in flight hold the read end now
			m, err := s.Receive()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Receive() error = %v, want %v", err, tt.wantErr)
			}
			if m.FDs != tt.wantFDs {
				t.Errorf("m.FDs = %d, want %d", m.FDs, tt.wantFDs)
			}
			if after := countFDs(t); after != before-1 {
				t.Errorf("open fds: %d before, %d after Receive; want %d (the pipe's read end closed)", before, after, before-1)
			}
			// Every copy of the read end is closed, so writing breaks the pipe.
			if _, err := w.Write([]byte("x")); !errors.Is(err, unix.EPIPE) {
				t.Errorf("write to the pipe = %v, want EPIPE: a copy of the read end is still open", err)
			}
		})
	}
}

func TestServerBarrier(t *testing.T) {
	s, n := newServerPair(t)
	done := make(chan error, 1)
	go func() { done <- n.Barrier(0) }()
	m, err := s.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Get("BARRIER"); v != "1" || m.FDs != 1 {
		t.Errorf("Receive() = %+v, want BARRIER=1 with 1 fd", m)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Barrier = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Barrier did not return: the Server kept the barrier fd")
	}
}

func TestServerChildPID(t *testing.T) {
	s, err := Listen("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=worker", "NOTIFY_SOCKET="+s.Addr())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := int32(cmd.Process.Pid)
	for _, want := range []string{"READY", "BARRIER"} {
		m, err := s.Receive()
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal(err)
		}
		if _, ok := m.Get(want); !ok || m.PID != pid {
			t.Errorf("Receive() = %+v, want %s from pid %d", m, want, pid)
		}
		if claimed, ok := m.Get("HELPER_PID"); ok && claimed != strconv.Itoa(int(pid)) {
			t.Errorf("helper says it is pid %s, kernel says %d", claimed, m.PID)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
}

func TestServerClose(t *testing.T) {
	s, _ := newServerPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Receive()
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Receive() during Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Receive")
	}
	if _, err := s.Receive(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive() after Close = %v, want net.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestListenPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "workers.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != path {
		t.Errorf("Addr() = %q, want %q", s.Addr(), path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file: %v, %v", fi, err)
	}
	if _, err := Listen(path); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("second Listen(%q) = %v, want EADDRINUSE", path, err)
	}
	n, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Receive(); err != nil || m.PID != int32(os.Getpid()) {
		t.Errorf("Receive() = %+v, %v", m, err)
	}
	var flags int
	err = s.raw.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFD, 0) })
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("server socket F_GETFD = %#x, %v; want FD_CLOEXEC", flags, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
	if _, err := Listen("relative.sock"); !errors.Is(err, ErrBadAddr) {
		t.Errorf("Listen(relative) = %v, want ErrBadAddr", err)
	}
}
