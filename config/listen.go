package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Networks lists the values Listener.Network may take.
var networks = []string{"tcp", "tcp4", "tcp6", "unix", "udp", "udp4", "udp6"}

// ParseListen parses the value of a --listen flag, "name=address", where
// address is written as in the file: "127.0.0.1:8080", "[::1]:80",
// "/run/x.sock", "@abstract", optionally behind a network prefix such as
// "tcp6:" or "unix:". The Listener it returns has Network set and passes
// the checks Validate makes on a listener.
func ParseListen(s string) (Listener, error) {
	l, err := parseListen(s)
	if err != nil {
		return Listener{}, fmt.Errorf("config: listen %q: %w", s, err)
	}
	return l, nil
}

func parseListen(s string) (Listener, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok {
		return Listener{}, errors.New("want name=address, such as http=127.0.0.1:8080")
	}
	if err := checkName(name); err != nil {
		return Listener{}, fmt.Errorf("name %w", err)
	}
	network, addr, err := splitAddress("", addr)
	if err != nil {
		return Listener{}, err
	}
	if addr == "" {
		return Listener{}, errors.New("address is empty")
	}
	if err := checkAddress(network, addr); err != nil {
		return Listener{}, err
	}
	return Listener{Name: name, Network: network, Address: addr}, nil
}

// splitAddress takes a network prefix ("tcp6:", "unix:", …) off address and
// works out the network: the prefix, else network, else unix for a path
// starting with / or @, else tcp. A prefix that contradicts network is an
// error.
func splitAddress(network, address string) (string, string, error) {
	if prefix, rest, ok := networkPrefix(address); ok {
		if network != "" && network != prefix {
			return network, address, fmt.Errorf("prefix %q contradicts network = %q", prefix+":", network)
		}
		network, address = prefix, rest
	}
	if network == "" {
		network = "tcp"
		if strings.HasPrefix(address, "/") || strings.HasPrefix(address, "@") {
			network = "unix"
		}
	}
	return network, address, nil
}

// networkPrefix splits "tcp6:[::1]:80" into "tcp6" and "[::1]:80".
func networkPrefix(address string) (network, rest string, ok bool) {
	i := strings.IndexByte(address, ':')
	if i <= 0 || !contains(networks, address[:i]) {
		return "", address, false
	}
	return address[:i], address[i+1:], true
}

// checkName checks a listener name: it becomes an entry of LISTEN_FDNAMES,
// which is colon-separated, and of the FD store (at most 255 bytes).
func checkName(name string) error {
	ok := name != "" && len(name) <= MaxNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	if !ok {
		return fmt.Errorf("must be 1 to %d of A-Z a-z 0-9 _ . - (got %q)", MaxNameLen, name)
	}
	return nil
}

// checkAddress checks that address can be listened on with network.
func checkAddress(network, address string) error {
	switch network {
	case "unix":
		return checkUnixAddress(address)
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		return checkInetAddress(network, address)
	}
	return fmt.Errorf("network must be one of %s (got %q)", strings.Join(networks, ", "), network)
}

func checkUnixAddress(address string) error {
	switch {
	case !strings.HasPrefix(address, "/") && !strings.HasPrefix(address, "@"):
		return fmt.Errorf("unix socket address must be an absolute path such as /run/app.sock or an abstract name such as @app (got %q)", address)
	case address == "@":
		return errors.New("abstract socket name after @ is empty")
	case strings.HasSuffix(address, "/"):
		return fmt.Errorf("unix socket path %q names a directory", address)
	case strings.IndexByte(address, 0) >= 0:
		return fmt.Errorf("unix socket address %q contains a NUL byte", address)
	case len(address) > maxUnixPath:
		return fmt.Errorf("unix socket address is %d bytes long, the kernel takes at most %d (got %q)", len(address), maxUnixPath, address)
	}
	return nil
}

func checkInetAddress(network, address string) error {
	host, port, msg, ok := splitHostPort(address)
	if !ok {
		return fmt.Errorf("address must be host:port, such as 127.0.0.1:8080 or [::1]:8080 (%s in %q)", msg, address)
	}
	if err := checkPort(port, address); err != nil {
		return err
	}
	if host == "" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if !validHostname(host) {
			return fmt.Errorf("host must be an IP address or a host name (got %q in %q)", host, address)
		}
		return nil
	}
	switch {
	case strings.HasSuffix(network, "4") && !ip.Unmap().Is4():
		return fmt.Errorf("%s needs an IPv4 address (got %q)", network, address)
	case strings.HasSuffix(network, "6") && ip.Is4():
		return fmt.Errorf("%s needs an IPv6 address (got %q)", network, address)
	}
	return nil
}

// validHostname accepts letters, digits, '-', '_' and '.', not leading with
// '-' or '.', at most 253 bytes.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '-' || h[0] == '.' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// splitHostPort is net.SplitHostPort with its complaint in net's own words, for the
// caller's message; ok is false when address is not host:port.
func splitHostPort(address string) (host, port, msg string, ok bool) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		msg = err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			msg = ae.Err
		}
		return "", "", msg, false
	}
	return host, port, "", true
}

// checkPort refuses a port that is not a number from 0 to 65535.
func checkPort(port, address string) error {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port must be a number from 0 to 65535 (got %q in %q)", port, address)
	}
	return nil
}
