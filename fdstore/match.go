package fdstore

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// Matches reports whether l can stand for s: the same name, the same kind of
// socket and the same address. Host names in s are resolved (any address
// they resolve to matches), an empty host matches a wildcard listener
// (0.0.0.0 or [::]), port 0 matches any port, tcp4/tcp6 (udp4/udp6) also
// require the address family. Unix paths are compared cleaned and made
// absolute against the working directory; abstract names exactly. Mode,
// Owner, Group and Backlog are not compared. A nil l matches nothing.
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
	host, port, err := splitHostPort(network, want)
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
	ips, err := lookupIPs(network, host)
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

// splitHostPort splits host:port and resolves a service name port.
func splitHostPort(network, address string) (host string, port int, err error) {
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	port, err = net.LookupPort(network, service)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

// lookupIPs returns the addresses of host for network: a literal as it is,
// a host name resolved to IPv4 (tcp4, udp4), IPv6 (tcp6, udp6) or both.
func lookupIPs(network, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ipNet := "ip"
	switch network[len(network)-1] {
	case '4':
		ipNet = "ip4"
	case '6':
		ipNet = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), ipNet, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("host %q has no %s address", host, ipNet)
	}
	return ips, nil
}

// listenIP picks the address to bind for network and host, as Go's net
// package does: "" is the wildcard (IPv4 for tcp4/udp4, IPv6 otherwise);
// a host name gives its first IPv4 address for tcp/udp, if it has one.
func listenIP(network, host string) (netip.Addr, error) {
	v := network[len(network)-1]
	if host == "" {
		if v == '4' {
			return netip.IPv4Unspecified(), nil
		}
		return netip.IPv6Unspecified(), nil
	}
	ips, err := lookupIPs(network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	ip := ips[0]
	if v != '4' && v != '6' {
		for _, c := range ips {
			if c.Is4() || c.Is4In6() {
				ip = c
				break
			}
		}
	}
	if ip.Is4In6() && v != '6' {
		ip = ip.Unmap()
	}
	switch {
	case v == '4' && !ip.Is4():
		return netip.Addr{}, fmt.Errorf("%s is not an IPv4 address", ip)
	case v == '6' && !ip.Is6():
		return netip.Addr{}, fmt.Errorf("%s is not an IPv6 address", ip)
	}
	return ip, nil
}
