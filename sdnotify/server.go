//go:build linux

package sdnotify

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Server is a notify socket for a master's workers: their $NOTIFY_SOCKET.
// Each Message carries the kernel's word for who sent it; the Server accepts
// datagrams from anyone who can reach the socket, and the caller drops those
// whose PID is not one of its workers. Because the Server closes received
// descriptors at once, a worker's sd_notify_barrier(3) returns as soon as
// the caller has called Receive for it.
type Server struct {
	addr string
	path string // socket file Listen created, removed by Close; "" if abstract
	conn *net.UnixConn
	raw  syscall.RawConn

	mu  sync.Mutex // serialises Receive; guards buf and oob
	buf []byte
	oob []byte

	closeOnce sync.Once
	closeErr  error
}

// Listen opens a close-on-exec unix datagram socket at addr (an absolute
// path or '@' and an abstract name) with SO_PASSCRED on. An empty addr picks
// an abstract name unique to this process, "@baton/<pid>/<random>", which
// needs no file and vanishes with the socket. A path must not exist yet; the
// file gets the process umask, and Close removes it.
func Listen(addr string) (*Server, error) {
	if addr == "" {
		addr = fmt.Sprintf("@baton/%d/%s", os.Getpid(), rand.Text()[:16])
	}
	if err := checkAddr(addr); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sdnotify: listen %q: %w", addr, os.NewSyscallError("socket", err))
	}
	file := os.NewFile(uintptr(fd), "sdnotify:"+addr)
	defer file.Close() // net.FileConn holds its own duplicate
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, fmt.Errorf("sdnotify: listen %q: %w", addr, os.NewSyscallError("setsockopt SO_PASSCRED", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		return nil, fmt.Errorf("sdnotify: listen %q: %w", addr, os.NewSyscallError("bind", err))
	}
	s := &Server{addr: addr}
	if addr[0] == '/' {
		s.path = addr
	}
	c, err := net.FileConn(file)
	if err == nil {
		s.conn = c.(*net.UnixConn)
		s.raw, err = s.conn.SyscallConn()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sdnotify: listen %q: %w", addr, err)
	}
	s.buf = make([]byte, MaxMessageSize)
	s.oob = make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*maxFDs))
	return s, nil
}

// Addr returns the value for a worker's NOTIFY_SOCKET: the path, or '@' and
// the abstract name.
func (s *Server) Addr() string {
	return s.addr
}

// Receive blocks until a datagram arrives and returns it. Descriptors that
// came with it (SCM_RIGHTS) are closed before Receive returns; m.FDs counts
// them. When err is not nil, m still holds what is known of the sender
// (credentials, FDs) for the caller's log, and err wraps one of:
//
//   - net.ErrClosed: the Server is closed; every later call returns it too.
//   - ErrTruncated: the datagram or its control data did not fit.
//   - ErrNoCredentials: no SCM_CREDENTIALS; drop the message.
//   - ErrMalformed: not KEY=VALUE lines (see ParseState).
//
// Only net.ErrClosed means the Server is done; after the others, call
// Receive again. Receive is safe for concurrent use; calls take turns.
func (s *Server) Receive() (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n, oobn, flags int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), s.buf, s.oob, unix.MSG_CMSG_CLOEXEC)
			if !errors.Is(rerr, unix.EINTR) {
				return !errors.Is(rerr, unix.EAGAIN)
			}
		}
	})
	if err != nil {
		return Message{}, fmt.Errorf("sdnotify: receive on %q: %w", s.addr, err)
	}
	var m Message
	cred, fds, cerr := parseControl(s.oob[:oobn])
	m.FDs = len(fds)
	closeFDs(fds)
	if cred != nil {
		m.PID, m.UID, m.GID = cred.Pid, cred.Uid, cred.Gid
	}
	switch {
	case rerr != nil:
		return m, fmt.Errorf("sdnotify: receive on %q: %w", s.addr, os.NewSyscallError("recvmsg", rerr))
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		return m, fmt.Errorf("sdnotify: receive on %q from pid %d: %w (flags %#x)", s.addr, m.PID, ErrTruncated, flags)
	case cerr != nil:
		return m, fmt.Errorf("sdnotify: receive on %q from pid %d: control data: %w", s.addr, m.PID, cerr)
	case cred == nil:
		return m, fmt.Errorf("sdnotify: receive on %q: %w", s.addr, ErrNoCredentials)
	}
	m.Fields, err = ParseState(s.buf[:n])
	if err != nil {
		return m, fmt.Errorf("sdnotify: receive on %q from pid %d: %w", s.addr, m.PID, err)
	}
	return m, nil
}

// Close closes the socket, which makes a blocked Receive return
// net.ErrClosed, and removes the socket file Listen created. Safe to call
// more than once; later calls return what the first one did.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.conn != nil {
			errs = append(errs, s.conn.Close())
		}
		if s.path != "" {
			errs = append(errs, os.Remove(s.path))
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sdnotify: close %q: %w", s.addr, err)
		}
	})
	return s.closeErr
}

// parseControl returns the credentials and descriptors in oob. It parses
// one control message at a time, so the descriptors found before a
// malformed one are still returned (to be closed).
func parseControl(oob []byte) (*unix.Ucred, []int, error) {
	var cred *unix.Ucred
	var fds []int
	for len(oob) >= unix.CmsgLen(0) {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return cred, fds, err
		}
		oob = rest
		if h.Level != unix.SOL_SOCKET {
			continue
		}
		m := unix.SocketControlMessage{Header: h, Data: data}
		switch h.Type {
		case unix.SCM_RIGHTS:
			got, err := unix.ParseUnixRights(&m)
			fds = append(fds, got...)
			if err != nil {
				return cred, fds, err
			}
		case unix.SCM_CREDENTIALS:
			c, err := unix.ParseUnixCredentials(&m)
			if err != nil {
				return cred, fds, err
			}
			cred = c
		}
	}
	return cred, fds, nil
}

// closeFDs closes descriptors that arrived with a message: the Server owns
// them and wants none.
func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
