package fdstore

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Spec asks for a listener baton opens itself (a [[listen]] entry).
type Spec struct {
	Name string
	// Network is tcp, tcp4, tcp6, udp, udp4, udp6 or unix.
	Network string
	// Address is host:port (host may be empty for all addresses, a literal
	// or a host name; port may be a service name), or for unix a path or
	// "@name" for an abstract socket.
	Address string
	// Mode, Owner and Group apply to a unix socket file only: after bind it
	// is chowned (Owner, Group: names or numeric ids; "" keeps it) and
	// chmoded (Mode: permission bits; 0 keeps what the umask gave).
	Mode  os.FileMode
	Owner string
	Group string
	// Backlog is the listen(2) backlog; 0 means net.core.somaxconn. The
	// kernel caps larger values at net.core.somaxconn. Ignored for udp.
	Backlog int
}

// maxUnixPath is the longest unix socket path bind(2) takes (sun_path
// holds 108 bytes, the last one a NUL for paths).
const maxUnixPath = 107

// Validate checks s without touching the system: the name (ValidName), the
// network, the form of the address, that Mode/Owner/Group are only set for a
// unix socket file, and Backlog >= 0. Errors wrap ErrInvalidSpec.
func (s Spec) Validate() error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("fdstore: %w %q: %s", ErrInvalidSpec, s.Name, fmt.Sprintf(format, args...))
	}
	perms := s.Mode != 0 || s.Owner != "" || s.Group != ""
	switch s.Network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return bad("address %q: want host:port (%v)", s.Address, err)
		}
		if perms {
			return bad("mode, owner and group apply only to unix socket files")
		}
	case "unix":
		if s.Address == "" || s.Address == "@" {
			return bad("unix address is empty")
		}
		if len(s.Address) > maxUnixPath {
			return bad("unix address is %d bytes long, the limit is %d", len(s.Address), maxUnixPath)
		}
		if strings.ContainsRune(s.Address, 0) {
			return bad("unix address contains a NUL byte")
		}
		if strings.HasPrefix(s.Address, "@") && perms {
			return bad("mode, owner and group do not apply to abstract socket %q", s.Address)
		}
	default:
		return bad("network %q unknown, want one of tcp, tcp4, tcp6, udp, udp4, udp6, unix", s.Network)
	}
	if s.Mode&^os.ModePerm != 0 {
		return bad("mode %v: only permission bits (0777) may be set", s.Mode)
	}
	if s.Backlog < 0 {
		return bad("backlog %d is negative", s.Backlog)
	}
	return nil
}
