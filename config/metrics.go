package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// metricsAddress splits metrics.address into its network and address:
// "unix:/run/m.sock" and "unix:@m" are unix without the prefix, as are a
// path starting with / and "@name" written bare; anything else is tcp.
func metricsAddress(s string) (network, address string) {
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		return "unix", rest
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "@") {
		return "unix", s
	}
	return "tcp", s
}

// checkMetricsAddress checks metrics.address. A TCP address must name an IP
// address and a port: the endpoint is bound where the admin says, never
// where a name lookup points (an empty host, all addresses, is refused too:
// it would expose the endpoint on every interface by accident).
func checkMetricsAddress(network, address string) error {
	if network == "unix" {
		return checkUnixAddress(address)
	}
	host, port, msg, ok := splitHostPort(address)
	if !ok {
		return fmt.Errorf("must be ip:port such as 127.0.0.1:9101 or [::1]:9101, or unix:/path (%s in %q)", msg, address)
	}
	if err := checkPort(port, address); err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("host must be an IP address such as 127.0.0.1 or ::1, or 0.0.0.0 for every IPv4 address (got %q in %q)", host, address)
	}
	if ip.Zone() != "" {
		return fmt.Errorf("host must not carry a zone (got %q in %q)", host, address)
	}
	return nil
}

// checkMetricsPath checks metrics.path: an absolute URL path of printable
// ASCII without query, fragment or spaces.
func checkMetricsPath(p string) error {
	if !strings.HasPrefix(p, "/") || len(p) > MaxMetricsPath {
		return fmt.Errorf("must be a URL path starting with / of at most %d bytes (got %q)", MaxMetricsPath, p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' {
			return fmt.Errorf("must be printable ASCII without spaces, ?, # or %% (got %q)", p)
		}
	}
	return nil
}
