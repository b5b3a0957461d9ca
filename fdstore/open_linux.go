//go:build linux

package fdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Open opens the socket s asks for and returns it as an Opened listener.
//
// tcp and unix sockets are SOCK_STREAM and listening (backlog s.Backlog, 0
// meaning net.core.somaxconn), udp sockets SOCK_DGRAM and bound. Every
// socket has close-on-exec set; tcp sockets have SO_REUSEADDR, so a restart
// can bind while old connections linger in TIME_WAIT. tcp6/udp6 sockets are
// IPv6 only; tcp/udp on the wildcard address are dual-stack when the host
// has IPv6 (else IPv4).
//
// For a unix path, a file already there is handled first: a socket nobody
// accepts on (connect gets ECONNREFUSED) is removed; a live one gives an
// error wrapping syscall.EADDRINUSE; anything that is not a socket gives an
// error wrapping ErrNotSocket and is never removed. The socket is then
// bound, its file born with s.Mode, chowned per s through an fd checked to
// be that very file (never through the path: see perms.go), and only then
// listens, so nobody can connect before the permissions are set. If the
// file was replaced in between, Open fails with ErrNotBoundFile. Between
// the check and bind another process could take the path; bind then fails.
// "@name" opens an abstract socket, which has no file.
//
// A host or service name in a tcp or udp address is looked up here, with
// no deadline; specs from LookupSpecs have none left.
//
// Errors name the listener: `fdstore: listen "web" on tcp :80: ...`.
// Invalid specs give the error of s.Validate. On error nothing is left open
// and no socket file Open created is left behind.
func Open(s Spec) (*Listener, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var fd int
	var sf sockFile
	var err error
	if s.Network == "unix" {
		fd, err = openUnix(s, &sf)
	} else {
		fd, err = openInet(s)
	}
	if err == nil {
		var l *Listener
		if l, err = wrap(s.Name, Opened, fd); err == nil {
			l.sock = sf
			return l, nil
		}
		unix.Close(fd)
		if s.Network == "unix" && !strings.HasPrefix(s.Address, "@") {
			removeSocketFile(s.Address)
		}
	}
	return nil, fmt.Errorf("fdstore: listen %q on %s %s: %w", s.Name, s.Network, s.Address, err)
}

func openInet(s Spec) (int, error) {
	host, port, err := splitHostPort(context.Background(), s.Network, s.Address)
	if err != nil {
		return -1, err
	}
	ip, err := listenIP(context.Background(), s.Network, host)
	if err != nil {
		return -1, err
	}
	sotype := unix.SOCK_STREAM
	if strings.HasPrefix(s.Network, "udp") {
		sotype = unix.SOCK_DGRAM
	}
	v6only := strings.HasSuffix(s.Network, "6")
	fd, err := listenInet(ip, port, sotype, v6only, s.Backlog)
	if errors.Is(err, unix.EAFNOSUPPORT) && host == "" && !v6only {
		// No IPv6 on this host: the wildcard is IPv4 only.
		fd, err = listenInet(netip.IPv4Unspecified(), port, sotype, false, s.Backlog)
	}
	return fd, err
}

func listenInet(ip netip.Addr, port, sotype int, v6only bool, backlog int) (int, error) {
	var family int
	var sa unix.Sockaddr
	if ip.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	} else {
		zone, err := zoneIndex(ip.Zone())
		if err != nil {
			return -1, err
		}
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16(), ZoneId: zone}
	}
	fd, err := unix.Socket(family, sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := setupInet(fd, family, sotype, sa, v6only, backlog); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// setupInet sets the options of a fresh inet socket, binds it and, for a
// stream socket, listens.
func setupInet(fd, family, sotype int, sa unix.Sockaddr, v6only bool, backlog int) error {
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(v6only)); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if sotype == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if sotype == unix.SOCK_STREAM {
		if err := unix.Listen(fd, listenBacklog(backlog)); err != nil {
			return os.NewSyscallError("listen", err)
		}
	}
	return nil
}

func openUnix(s Spec, sf *sockFile) (int, error) {
	if !strings.HasPrefix(s.Address, "@") {
		if err := clearStale(s.Address); err != nil {
			return -1, err
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := setupUnix(fd, s, sf); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// setupUnix binds a fresh unix socket, sets the mode and owner of its file
// (see perms.go) and listens. If it fails after bind, it removes the file
// bind made.
func setupUnix(fd int, s Spec, sf *sockFile) error {
	path := s.Address
	if strings.HasPrefix(path, "@") {
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			return os.NewSyscallError("bind", err)
		}
	} else {
		if err := bindUnix(fd, path, s.Mode); err != nil {
			return err
		}
		c, err := planPerms(fd, s, sf)
		if err == nil && c != nil {
			err = c.apply()
		}
		if err != nil {
			removeSocketFile(path)
			return err
		}
	}
	if err := unix.Listen(fd, listenBacklog(s.Backlog)); err != nil {
		if !strings.HasPrefix(path, "@") {
			removeSocketFile(path)
		}
		return os.NewSyscallError("listen", err)
	}
	return nil
}

// RemoveStale removes the unix socket file at path if nothing accepts on it any more (its
// listener was closed): nothing there is fine; a live socket, or a file that is not a
// socket, is left alone and reported.
func RemoveStale(path string) error { return clearStale(path) }

// clearStale makes way for a unix socket at path: nothing there is fine, a
// dead socket is removed, a live socket or any other file is an error.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s is a %v: %w", path, fi.Mode().Type(), ErrNotSocket)
	}
	live, err := socketLive(path)
	if err != nil {
		return fmt.Errorf("probe existing socket %s: %w", path, err)
	}
	if live {
		return fmt.Errorf("%s is in use by a live socket: %w", path, unix.EADDRINUSE)
	}
	return os.Remove(path)
}

// socketLive connects to the socket file at path without blocking, trying
// each socket type until one fits: true if something listens, false if the
// connection is refused (nobody has it open), an error if it cannot tell.
func socketLive(path string) (bool, error) {
	var err error
	for _, sotype := range []int{unix.SOCK_STREAM, unix.SOCK_SEQPACKET, unix.SOCK_DGRAM} {
		var fd int
		fd, err = unix.Socket(unix.AF_UNIX, sotype|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return false, os.NewSyscallError("socket", err)
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		unix.Close(fd)
		switch {
		case err == nil, err == unix.EAGAIN: // EAGAIN: its backlog is full
			return true, nil
		case err == unix.ECONNREFUSED:
			return false, nil
		case err != unix.EPROTOTYPE:
			return false, os.NewSyscallError("connect", err)
		}
	}
	return false, os.NewSyscallError("connect", err)
}

func listenBacklog(n int) int {
	if n > 0 {
		return n
	}
	if b, err := os.ReadFile("/proc/sys/net/core/somaxconn"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return n
		}
	}
	return unix.SOMAXCONN
}

func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
