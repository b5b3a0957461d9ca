package fdstore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseListenEnv checks that parseListenEnv never panics, returns one
// valid name per fd, and that for a named set LISTEN_FDNAMES round-trips:
// joining the names gives the variable back.
func FuzzParseListenEnv(f *testing.F) {
	f.Add("42", "3", "web:web:admin", true) // a socket unit with two ListenStream= and one more
	f.Add("42", "2", "", false)             // no LISTEN_FDNAMES: "unknown" each
	f.Add("42", "1", "", true)              // empty LISTEN_FDNAMES for one fd: malformed
	f.Add("42", "3", "a::b", true)          // empty name in the middle: malformed
	f.Add("41", "3", "a:b:c", true)         // another process's fds: ignored
	f.Add("+42", "03", "a:b:c", true)       // signs and leading zeros
	f.Add("42", "65537", "", false)         // above the fd count limit
	f.Add("42", "1", "my sock", true)       // systemd allows spaces in names
	f.Add("42", "1", "a\x00b", true)        // a control character
	f.Fuzz(func(t *testing.T, pid, fds, names string, namesSet bool) {
		env := listenEnv{pid: pid, pidSet: true, fds: fds, names: names, namesSet: namesSet}
		got, err := parseListenEnv(env, 42)
		if err != nil {
			if got != nil {
				t.Fatalf("names %q with error %v", got, err)
			}
			return
		}
		for _, n := range got {
			if !validFDName(n) {
				t.Fatalf("invalid name %q accepted", n)
			}
		}
		if namesSet && len(got) > 0 && strings.Join(got, ":") != names {
			t.Fatalf("round trip: %q gave %q", names, got)
		}
	})
}

// FuzzDecodeHeader checks that decodeHeader never panics and that what it
// accepts encodes back to the same bytes.
func FuzzDecodeHeader(f *testing.F) {
	f.Add(encodeHeader(0, 0))                                                      // an empty set
	f.Add(encodeHeader(300, 2))                                                    // 300 listeners in two chunks
	f.Add(encodeHeader(300, 1))                                                    // more than SCM_MAX_FD in one chunk: malformed
	f.Add(encodeHeader(1<<16+1, 1<<16+1))                                          // above the listener limit
	f.Add(encodeChunk([]entry{{Opened, "web"}}))                                   // a chunk where a header belongs
	f.Add([]byte{0, 0, 0, 14, 'B', 'T', 'F', 'D', 2, 'H', 0, 0, 0, 0, 0, 0, 0, 0}) // version 2
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})                                          // a length far beyond the frame
	f.Fuzz(func(t *testing.T, frame []byte) {
		count, chunks, err := decodeHeader(frame)
		if err != nil {
			return
		}
		if back := encodeHeader(count, chunks); !bytes.Equal(back, frame) {
			t.Fatalf("round trip: %x gave (%d, %d), encoded %x", frame, count, chunks, back)
		}
	})
}

// FuzzDecodeChunk checks that decodeChunk never panics, accepts only valid
// names and sources, and that what it accepts encodes back to the same bytes.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(encodeChunk([]entry{{Opened, "web"}}))                                       // one listener
	f.Add(encodeChunk([]entry{{Activated, "web"}, {Activated, "web"}, {Opened, "a"}})) // a shared name
	f.Add(encodeChunk([]entry{{Opened, strings.Repeat("n", 255)}}))                    // the longest name
	f.Add(encodeChunk([]entry{{Opened, "a:b"}}))                                       // a name with ':': malformed
	f.Add(encodeChunk([]entry{{Source(7), "web"}}))                                    // an unknown source
	f.Add(encodeChunk(nil))                                                            // no entries: malformed
	f.Add(encodeChunk([]entry{{Opened, "web"}})[:10])                                  // cut short
	f.Fuzz(func(t *testing.T, frame []byte) {
		es, err := decodeChunk(frame)
		if err != nil {
			return
		}
		for _, e := range es {
			if !e.source.valid() || !validFDName(e.name) {
				t.Fatalf("accepted entry %+v", e)
			}
		}
		if back := encodeChunk(es); !bytes.Equal(back, frame) {
			t.Fatalf("round trip: %x gave %+v, encoded %x", frame, es, back)
		}
	})
}

// FuzzLookupSpecs checks that a spec with a literal host (or none) and a
// port number goes through LookupSpecs untouched and without a lookup, and
// that whatever LookupSpecs returns is such a spec: given back to
// LookupSpecs or to Matches, it is looked up no more (lookup → print →
// lookup).
func FuzzLookupSpecs(f *testing.F) {
	f.Add(uint8(0), "127.0.0.1", "8080")   // tcp, literal: untouched
	f.Add(uint8(2), "::1", "0")            // tcp6
	f.Add(uint8(0), "", "80")              // the wildcard
	f.Add(uint8(3), "fe80::1%eth0", "53")  // udp, a zone
	f.Add(uint8(0), "::ffff:10.0.0.1", "") // mapped, empty port
	f.Add(uint8(0), "localhost", "http")   // both looked up
	f.Add(uint8(2), "dual", "443")         // tcp6 picks the IPv6 address
	f.Add(uint8(1), "v6only", "80")        // tcp4: no IPv4 address
	f.Add(uint8(0), "127.1", "80")         // not a literal for netip: a name
	f.Add(uint8(0), "10.0.0.1", "65536")   // port out of range
	f.Add(uint8(0), "10.0.0.1", "+80")     // a sign: not a number, a service name
	networks := []string{"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"}
	f.Fuzz(func(t *testing.T, n uint8, host, port string) {
		r := &fakeResolver{
			hosts: map[string][]netip.Addr{
				"localhost": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
				"dual":      {netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")},
				"v6only":    {netip.MustParseAddr("2001:db8::1")},
			},
			services: map[string]int{"http": 80},
		}
		old := resolver
		resolver = r
		defer func() { resolver = old }()

		s := Spec{Name: "x", Network: networks[int(n)%len(networks)], Address: net.JoinHostPort(host, port)}
		got, err := LookupSpecs(context.Background(), []Spec{s})
		if errors.Is(err, ErrInvalidSpec) {
			return
		}
		_, hostErr := netip.ParseAddr(host)
		_, portErr := strconv.ParseUint(port, 10, 16)
		if (host == "" || hostErr == nil) && (port == "" || portErr == nil) {
			if err != nil || got[0] != s || len(r.calls) != 0 {
				t.Fatalf("literal %+v: got %+v, %v, lookups %q", s, got, err, r.calls)
			}
		}
		if err != nil {
			return
		}
		r.calls = nil
		again, err := LookupSpecs(context.Background(), got)
		if err != nil || again[0] != got[0] || len(r.calls) != 0 {
			t.Fatalf("%+v gave %+v, which gave %+v, %v, lookups %q", s, got[0], again, err, r.calls)
		}
		(&Listener{Name: "x", Network: "tcp", Addr: "127.0.0.1:80"}).Matches(got[0])
		(&Listener{Name: "x", Network: "udp", Addr: "[::1]:80"}).Matches(got[0])
		if len(r.calls) != 0 {
			t.Fatalf("Matches(%+v) looked up %q", got[0], r.calls)
		}
	})
}
