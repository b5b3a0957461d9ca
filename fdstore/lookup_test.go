package fdstore

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeResolver answers from hosts and services and counts the lookups.
type fakeResolver struct {
	hosts    map[string][]netip.Addr
	services map[string]int
	calls    []string
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.calls = append(r.calls, network+" "+host)
	var ips []netip.Addr
	for _, ip := range r.hosts[host] {
		if network == "ip" || network == "ip4" && (ip.Is4() || ip.Is4In6()) || network == "ip6" && ip.Is6() && !ip.Is4In6() {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func (r *fakeResolver) LookupPort(ctx context.Context, network, service string) (int, error) {
	r.calls = append(r.calls, network+" port "+service)
	if p, ok := r.services[service]; ok {
		return p, nil
	}
	return 0, &net.DNSError{Err: "unknown port", Name: network + "/" + service, IsNotFound: true}
}

// useResolver makes r the package's resolver until t ends.
func useResolver(t *testing.T, r lookuper) {
	t.Helper()
	old := resolver
	resolver = r
	t.Cleanup(func() { resolver = old })
}

func TestLookupSpecsLocalhost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	specs := []Spec{
		{Name: "web", Network: "tcp", Address: "localhost:8080"},
		{Name: "www", Network: "tcp4", Address: "localhost:http"},
		{Name: "any", Network: "tcp", Address: ":https"},
		{Name: "dns", Network: "udp", Address: "127.0.0.1:53"},
		{Name: "admin", Network: "unix", Address: "/run/baton/admin.sock", Mode: 0o600},
	}
	in := slices.Clone(specs)
	got, err := LookupSpecs(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(specs)
	want[0].Address = "127.0.0.1:8080"
	want[1].Address = "127.0.0.1:80"
	want[2].Address = ":443"
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if !slices.Equal(specs, in) {
		t.Errorf("specs changed: %+v", specs)
	}

	// The address net.Listen picks for the name.
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	host, _, _ := net.SplitHostPort(l.Addr().String())
	if gotHost, _, _ := net.SplitHostPort(got[0].Address); gotHost != host {
		t.Errorf("localhost: got %s, net.Listen binds %s", gotHost, host)
	}
}

func TestLookupSpecsContextDone(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	specs := []Spec{
		{Name: "lit", Network: "tcp", Address: "127.0.0.1:8080"},
		{Name: "web", Network: "tcp", Address: "localhost:8080"},
	}
	got, err := LookupSpecs(ctx, specs)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"web"`) || !strings.Contains(err.Error(), "localhost:8080") {
		t.Errorf("got %v, want context.DeadlineExceeded naming \"web\" and its address", err)
	}
	if got != nil {
		t.Errorf("got specs %+v with an error", got)
	}
	t.Log(err)

	// Nothing to look up: a done context does not matter.
	if _, err := LookupSpecs(ctx, specs[:1]); err != nil {
		t.Errorf("literal spec with a done context: %v", err)
	}
}

func TestLookupSpecsErrors(t *testing.T) {
	r := &fakeResolver{hosts: map[string][]netip.Addr{"v4only": {netip.MustParseAddr("192.0.2.1")}}}
	useResolver(t, r)
	tests := []struct {
		name    string
		spec    Spec
		wantErr error // nil: any error
	}{
		{"invalid spec", Spec{Name: "a:b", Network: "tcp", Address: "x:1"}, ErrInvalidSpec},
		{"unknown host", Spec{Name: "web", Network: "tcp", Address: "nowhere:80"}, nil},
		{"unknown service", Spec{Name: "web", Network: "tcp", Address: ":nosuch"}, nil},
		{"port out of range", Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:65536"}, nil},
		{"no IPv6 address", Spec{Name: "web", Network: "tcp6", Address: "v4only:80"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookupSpecs(context.Background(), []Spec{tt.spec})
			if err == nil || got != nil {
				t.Fatalf("got %+v, %v; want an error", got, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidSpec) && !strings.Contains(err.Error(), `"web"`) {
				t.Errorf("error %q does not name the spec", err)
			}
		})
	}
}

// LookupSpecs picks the address net.Listen would bind.
func TestLookupSpecsPick(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var ips []netip.Addr
		for _, a := range s {
			ips = append(ips, netip.MustParseAddr(a))
		}
		return ips
	}
	r := &fakeResolver{
		hosts: map[string][]netip.Addr{
			"dual":    addrs("2001:db8::1", "192.0.2.1", "192.0.2.2", "2001:db8::2"),
			"v6":      addrs("2001:db8::1", "2001:db8::2"),
			"mapped":  addrs("2001:db8::1", "::ffff:192.0.2.9"),
			"zoned":   addrs("fe80::1%eth0"),
			"v4first": addrs("192.0.2.1", "2001:db8::1"),
		},
		services: map[string]int{"http": 80},
	}
	useResolver(t, r)
	tests := []struct{ network, address, want string }{
		{"tcp", "dual:80", "192.0.2.1:80"}, // IPv4 first, as net.Listen
		{"udp", "dual:53", "192.0.2.1:53"},
		{"tcp4", "dual:80", "192.0.2.1:80"},
		{"tcp6", "dual:80", "[2001:db8::1]:80"},
		{"udp6", "dual:53", "[2001:db8::1]:53"},
		{"tcp", "v6:80", "[2001:db8::1]:80"}, // no IPv4: the first
		{"tcp", "mapped:80", "192.0.2.9:80"}, // mapped counts as IPv4
		{"tcp6", "mapped:80", "[2001:db8::1]:80"},
		{"tcp", "zoned:80", "[fe80::1%eth0]:80"},
		{"tcp", "v4first:http", "192.0.2.1:80"},
		{"tcp", "192.0.2.7:http", "192.0.2.7:80"}, // literal host, service port
		{"tcp", "[2001:db8::7]:http", "[2001:db8::7]:80"},
		{"tcp", ":http", ":80"},
		{"tcp", ":", ":"}, // literal: untouched
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			got, err := LookupSpecs(context.Background(), []Spec{{Name: "x", Network: tt.network, Address: tt.address}})
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Address != tt.want {
				t.Errorf("got %s, want %s", got[0].Address, tt.want)
			}
		})
	}
}

// Literal addresses go through LookupSpecs and Matches untouched and
// without a lookup.
func TestLiteralSpecsNoLookup(t *testing.T) {
	r := &fakeResolver{}
	useResolver(t, r)
	specs := []Spec{
		{Name: "a", Network: "tcp", Address: "127.0.0.1:8080"},
		{Name: "b", Network: "tcp", Address: "[::1]:0"},
		{Name: "c", Network: "tcp", Address: ":8080"},
		{Name: "d", Network: "tcp4", Address: "0.0.0.0:0"},
		{Name: "e", Network: "tcp6", Address: "[fe80::1%lo]:443"},
		{Name: "f", Network: "udp", Address: "[::ffff:127.0.0.1]:53"},
		{Name: "g", Network: "udp6", Address: "[::]:"},
		{Name: "h", Network: "unix", Address: "/run/x.sock"},
		{Name: "i", Network: "unix", Address: "@x"},
	}
	got, err := LookupSpecs(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, specs) {
		t.Errorf("got %+v, want them untouched", got)
	}
	for _, s := range specs {
		l := &Listener{Name: s.Name, Network: "tcp", Addr: "127.0.0.1:8080"}
		l.Matches(s)
	}
	if len(r.calls) != 0 {
		t.Errorf("lookups: %q", r.calls)
	}
}
