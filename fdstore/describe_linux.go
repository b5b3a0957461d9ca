//go:build linux

package fdstore

import (
	"net"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// wrap makes fd a Listener, describing its socket. On error fd is left
// open and unwrapped: the caller still owns it.
func wrap(name string, src Source, fd int) (*Listener, error) {
	network, addr, err := describe(fd)
	if err != nil {
		return nil, err
	}
	return &Listener{
		Name:    name,
		Source:  src,
		File:    os.NewFile(uintptr(fd), name),
		Network: network,
		Addr:    addr,
	}, nil
}

// describe reports Listener.Network and Listener.Addr for fd from
// SO_DOMAIN, SO_TYPE and getsockname: "", "" for anything that is not an
// inet or unix socket.
func describe(fd int) (network, addr string, err error) {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err == unix.ENOTSOCK {
		return "", "", nil
	}
	if err != nil {
		return "", "", os.NewSyscallError("getsockopt SO_DOMAIN", err)
	}
	sotype, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return "", "", os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	switch {
	case domain == unix.AF_INET || domain == unix.AF_INET6:
		switch sotype {
		case unix.SOCK_STREAM:
			network = "tcp"
		case unix.SOCK_DGRAM:
			network = "udp"
		}
	case domain == unix.AF_UNIX:
		switch sotype {
		case unix.SOCK_STREAM:
			network = "unix"
		case unix.SOCK_DGRAM:
			network = "unixgram"
		case unix.SOCK_SEQPACKET:
			network = "unixpacket"
		}
	}
	if network == "" {
		return "", "", nil
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", "", os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		addr = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			ip = ip.WithZone(zoneName(sa.ZoneId))
		}
		addr = netip.AddrPortFrom(ip, uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		// x/sys/unix shows an unbound socket (empty sun_path) as "@",
		// the same as an abstract socket with an empty name, which
		// nobody binds on purpose.
		addr = sa.Name
		if addr == "@" {
			addr = ""
		}
	}
	return network, addr, nil
}

func zoneName(index uint32) string {
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}
