//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxFDs is SCM_MAX_FD: the kernel refuses more descriptors in one message.
const maxFDs = 253

// Notifier sends notify messages to a service manager (or to a baton master,
// for a worker). A nil *Notifier is a no-op: every method returns nil and
// Addr returns "". Its methods are safe for concurrent use.
type Notifier struct {
	addr   string
	file   *os.File        // blocking, unconnected AF_UNIX datagram socket
	conn   syscall.RawConn // of file: sends hold a reference, so Close cannot free the fd under them
	closed atomic.Bool
}

// New opens a Notifier for $NOTIFY_SOCKET. When the variable is unset or
// empty it returns (nil, err) with err wrapping os.ErrNotExist, and the nil
// Notifier is ready to use as a no-op. It does not unset $NOTIFY_SOCKET.
func New() (*Notifier, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET is not set: %w", os.ErrNotExist)
	}
	return Open(addr)
}

// Open opens a Notifier for addr: an absolute path, or '@' and an abstract
// socket name. It opens a close-on-exec socket but does not check that
// anyone listens at addr; the first Notify does. Errors for a bad addr wrap
// ErrBadAddr.
func Open(addr string) (*Notifier, error) {
	if err := checkAddr(addr); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sdnotify: open %q: %w", addr, os.NewSyscallError("socket", err))
	}
	file := os.NewFile(uintptr(fd), "sdnotify:"+addr)
	conn, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("sdnotify: open %q: %w", addr, err)
	}
	return &Notifier{addr: addr, file: file, conn: conn}, nil
}

// Addr returns the address the Notifier sends to, as given to Open.
func (n *Notifier) Addr() string {
	if n == nil {
		return ""
	}
	return n.addr
}

// Notify sends the state lines, joined by "\n", as one datagram, for example
// Notify(Ready, Status("serving")). It returns once the kernel has queued the
// datagram, which says nothing about whether the receiver has read it: use
// Barrier for that. It blocks while the receiver's queue is full. An empty
// message is an error. After Close it returns an error satisfying
// errors.Is(err, net.ErrClosed).
func (n *Notifier) Notify(state ...string) error {
	if n == nil {
		return nil
	}
	return n.send("notify", state, nil)
}

// NotifyWithFDs sends state like Notify, with copies of fds attached
// (SCM_RIGHTS), for example NotifyWithFDs(fds, FDStore, name) with name
// from FDName. The caller keeps ownership of fds and may close them once
// NotifyWithFDs returns. At most 253 descriptors fit in one message.
func (n *Notifier) NotifyWithFDs(fds []int, state ...string) error {
	if n == nil {
		return nil
	}
	if len(fds) > maxFDs {
		return fmt.Errorf("sdnotify: notify %q with %d fds: at most %d fit in one message", n.addr, len(fds), maxFDs)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	return n.send("notify with fds", state, oob)
}

// NotifyWithFiles is NotifyWithFDs for files. It does not change the files'
// blocking mode (as File.Fd would) and keeps them alive until the message
// is sent. The caller keeps ownership of files.
func (n *Notifier) NotifyWithFiles(files []*os.File, state ...string) error {
	if n == nil {
		return nil
	}
	fds := make([]int, 0, len(files))
	for _, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("sdnotify: notify %q with %s: %w", n.addr, f.Name(), err)
		}
		if err := rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
			return fmt.Errorf("sdnotify: notify %q with %s: %w", n.addr, f.Name(), err)
		}
	}
	err := n.NotifyWithFDs(fds, state...)
	runtime.KeepAlive(files)
	return err
}

// Close closes the socket. It does not wait for sends in progress, which
// keep the socket until they return. Safe to call more than once.
func (n *Notifier) Close() error {
	if n == nil || n.closed.Swap(true) {
		return nil
	}
	if err := n.file.Close(); err != nil {
		return fmt.Errorf("sdnotify: close %q: %w", n.addr, err)
	}
	return nil
}

// send sends one datagram to n.addr, retrying on EINTR. A fresh sockaddr
// per call: unix.Sendmsg writes into it, so it cannot be shared.
func (n *Notifier) send(op string, state []string, oob []byte) error {
	msg := strings.Join(state, "\n")
	if msg == "" {
		return fmt.Errorf("sdnotify: %s %q: empty message", op, n.addr)
	}
	if n.closed.Load() {
		return fmt.Errorf("sdnotify: %s %q: %w", op, n.addr, net.ErrClosed)
	}
	var serr error
	err := n.conn.Write(func(fd uintptr) bool {
		for {
			to := &unix.SockaddrUnix{Name: n.addr}
			serr = unix.Sendmsg(int(fd), []byte(msg), oob, to, unix.MSG_NOSIGNAL)
			if !errors.Is(serr, unix.EINTR) {
				return true
			}
		}
	})
	switch {
	case err != nil && n.closed.Load():
		return fmt.Errorf("sdnotify: %s %q: %w", op, n.addr, net.ErrClosed)
	case err != nil:
		return fmt.Errorf("sdnotify: %s %q: %w", op, n.addr, err)
	case serr != nil:
		return fmt.Errorf("sdnotify: %s %q: %w", op, n.addr, os.NewSyscallError("sendmsg", serr))
	}
	return nil
}
