package fdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// LookupSpecs returns a copy of specs in which the address of every tcp
// and udp spec that names a host or a service is replaced by the literal
// IP and port number Open would bind, looked up with ctx (its deadline
// bounds the lookups): "localhost:http" becomes "127.0.0.1:80". Open,
// Matches and Resolve given the result look nothing up. Literal addresses,
// an empty host (the wildcard) and unix specs are kept as they are, and
// need no lookup.
//
// A host name gives one address, the one net.Listen would bind: for tcp
// and udp its first IPv4 address (an IPv4-mapped IPv6 address counts as
// IPv4, and is written as IPv4), or its first address if it has no IPv4
// one; for tcp4/udp4 its first IPv4 address, for tcp6/udp6 its first IPv6
// one. "First" is in the resolver's order (RFC 6724 for Go's own). A
// listener opened from the name, before, matched any of its addresses;
// from the result it matches that one.
//
// Specs are validated first (errors wrap ErrInvalidSpec). A failed lookup,
// or ctx done before one, gives an error naming the spec and wrapping the
// cause (context.DeadlineExceeded, a *net.DNSError); nothing is returned
// then. specs is not changed.
func LookupSpecs(ctx context.Context, specs []Spec) ([]Spec, error) {
	out := slices.Clone(specs)
	for i, s := range out {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if s.Network == "unix" {
			continue
		}
		addr, err := lookupAddr(ctx, s.Network, s.Address)
		if err != nil {
			return nil, fmt.Errorf("fdstore: look up %q (%s %s): %w", s.Name, s.Network, s.Address, err)
		}
		out[i].Address = addr
	}
	return out, nil
}

// lookupAddr returns address (host:port, valid) with its host and port
// literal, for network (tcp, tcp4, ..., udp6).
func lookupAddr(ctx context.Context, network, address string) (string, error) {
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return "", err
	}
	_, portErr := numericPort(service)
	_, hostErr := netip.ParseAddr(host)
	if portErr == nil && (host == "" || hostErr == nil) {
		return address, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	host, port, err := splitHostPort(ctx, network, address)
	if err != nil {
		return "", err
	}
	if host == "" {
		return net.JoinHostPort("", strconv.Itoa(port)), nil
	}
	if hostErr == nil {
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	ip, err := listenIP(ctx, network, host)
	if err != nil {
		return "", err
	}
	return netip.AddrPortFrom(ip, uint16(port)).String(), nil
}

// lookuper is what the package asks of a *net.Resolver. Every lookup goes
// through resolver, so that tests see them all.
type lookuper interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupPort(ctx context.Context, network, service string) (int, error)
}

var resolver lookuper = net.DefaultResolver

// splitHostPort splits host:port and resolves a service name port.
func splitHostPort(ctx context.Context, network, address string) (host string, port int, err error) {
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	port, err = numericPort(service)
	if errors.Is(err, errNotNumeric) {
		port, err = resolver.LookupPort(ctx, network, service)
	}
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

var errNotNumeric = errors.New("not a port number")

// numericPort parses a port number, "" being 0 as for net.Listen. It fails
// with errNotNumeric for anything but decimal digits (a service name).
func numericPort(service string) (int, error) {
	if service == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(service, 10, 16)
	if err == nil {
		return int(n), nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("port %s is above 65535", service)
	}
	return 0, errNotNumeric
}

// lookupIPs returns the addresses of host for network: a literal as it is,
// a host name resolved to IPv4 (tcp4, udp4), IPv6 (tcp6, udp6) or both.
func lookupIPs(ctx context.Context, network, host string) ([]netip.Addr, error) {
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
	ips, err := resolver.LookupNetIP(ctx, ipNet, host)
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
// for a host name see pickIP.
func listenIP(ctx context.Context, network, host string) (netip.Addr, error) {
	v := network[len(network)-1]
	if host == "" {
		if v == '4' {
			return netip.IPv4Unspecified(), nil
		}
		return netip.IPv6Unspecified(), nil
	}
	ips, err := lookupIPs(ctx, network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	return pickIP(network, ips)
}

// pickIP picks among the addresses of a host the one net.Listen binds
// (net.addrList.forResolve and first): for tcp/udp the first IPv4 one,
// else the first; for tcp4/udp4 the first IPv4 one, for tcp6/udp6 the
// first IPv6 one. An IPv4-mapped address counts as IPv4 and is unmapped.
func pickIP(network string, ips []netip.Addr) (netip.Addr, error) {
	is4 := func(ip netip.Addr) bool { return ip.Is4() || ip.Is4In6() }
	v := network[len(network)-1]
	for _, ip := range ips {
		switch {
		case v == '6' && !is4(ip):
			return ip, nil
		case v != '6' && is4(ip):
			return ip.Unmap(), nil
		}
	}
	switch {
	case v == '4':
		return netip.Addr{}, fmt.Errorf("%s is not an IPv4 address", ips[0])
	case v == '6':
		return netip.Addr{}, fmt.Errorf("%s is not an IPv6 address", ips[0])
	}
	return ips[0], nil
}
