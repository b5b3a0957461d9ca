package fdstore

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
)

// Matches reports whether l can stand for s: the same name, the same kind of
// socket and the same address. Host names in s are looked up, with no
// deadline (any address they resolve to matches), as are service names
// for the port; specs from LookupSpecs have neither, and Matches then
// looks nothing up. An empty host matches a wildcard listener (0.0.0.0 or
// [::]), port 0 matches any port, tcp4/tcp6 (udp4/udp6) also require the
// address family. Unix paths are compared cleaned and made absolute
// against the working directory; abstract names exactly. Mode, Owner,
// Group and Backlog are not compared. A nil l matches nothing.
func (l *Listener) Matches(s Spec) bool {
	if l == nil || l.Name != s.Name {
		return false
	}
	switch s.Network {
	case "unix":
		return l.Network == "unix" && sameUnixAddr(s.Address, l.Addr)
	case "tcp", "tcp4", "tcp6":
		return l.Network == "tcp" && sameInetAddr(s.Network, s.Address, l.Addr)
	case "udp", "udp4", "udp6":
		return l.Network == "udp" && sameInetAddr(s.Network, s.Address, l.Addr)
	}
	return false
}

func sameUnixAddr(want, got string) bool {
	if want == "" || got == "" {
		return false
	}
	if strings.HasPrefix(want, "@") || strings.HasPrefix(got, "@") {
		return want == got
	}
	return absPath(want) == absPath(got)
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

func sameInetAddr(network, want, got string) bool {
	have, err := netip.ParseAddrPort(got)
	if err != nil {
		return false
	}
	host, port, err := splitHostPort(context.Background(), network, want)
	if err != nil || port != 0 && port != int(have.Port()) {
		return false
	}
	ip := have.Addr().WithZone("")
	switch network[len(network)-1] {
	case '4':
		if !ip.Is4() {
			return false
		}
	case '6':
		if !ip.Is6() {
			return false
		}
	}
	if host == "" {
		return ip.IsUnspecified()
	}
	ips, err := lookupIPs(context.Background(), network, host)
	if err != nil {
		return false
	}
	for _, w := range ips {
		if w.WithZone("").Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}
