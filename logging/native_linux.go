//go:build linux

package logging

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// nativeSender sends datagrams to journald's native socket from one
// unbound, blocking, close-on-exec datagram socket. A blocking socket makes
// a send wait while journald's queue is full instead of dropping the line,
// as sd_journal_send(3) does. Each datagram is addressed to the socket path
// again, so a restarted journald is reached.
type nativeSender struct {
	sock *os.File // owns the socket; closed when the sender is closed or collected
	addr *unix.SockaddrUnix
}

// openSender returns a sender to the journald socket at path, or an error
// wrapping os.ErrNotExist when nothing is there.
func openSender(path string) (*nativeSender, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("logging: journal socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("logging: journal socket %s: not a socket: %w", path, os.ErrNotExist)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("logging: journal socket: %w", os.NewSyscallError("socket", err))
	}
	return &nativeSender{sock: os.NewFile(uintptr(fd), "journal"), addr: &unix.SockaddrUnix{Name: path}}, nil
}

// send delivers datagram as one entry. A datagram too large for the socket
// goes in a sealed memfd passed with SCM_RIGHTS, the form journald reads
// for large entries.
func (s *nativeSender) send(datagram []byte) error {
	err := s.sendmsg(datagram, nil)
	if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
		return s.sendMemfd(datagram)
	}
	return err
}

func (s *nativeSender) sendmsg(p, oob []byte) error {
	rc, err := s.sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			serr = unix.Sendmsg(int(fd), p, oob, s.addr, unix.MSG_NOSIGNAL)
			if serr != unix.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("logging: journal: %w", os.NewSyscallError("sendmsg", serr))
	}
	return nil
}

func (s *nativeSender) sendMemfd(datagram []byte) error {
	fd, err := unix.MemfdCreate("baton-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("logging: journal: %w", os.NewSyscallError("memfd_create", err))
	}
	f := os.NewFile(uintptr(fd), "baton-journal")
	defer f.Close()
	if _, err := f.Write(datagram); err != nil {
		return fmt.Errorf("logging: journal: %w", err)
	}
	const seals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("logging: journal: %w", os.NewSyscallError("fcntl F_ADD_SEALS", err))
	}
	return s.sendmsg(nil, unix.UnixRights(int(f.Fd())))
}

// close closes the socket.
func (s *nativeSender) close() error {
	return s.sock.Close()
}
