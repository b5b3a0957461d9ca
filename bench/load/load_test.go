package load

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawServer serves each connection with serve, on loopback, until the test
// ends.
func rawServer(t *testing.T, serve func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return l.Addr().String()
}

// readRequest reads one request's head; false at end of stream.
func readRequest(r *bufio.Reader) bool {
	req, err := http.ReadRequest(r)
	if err != nil {
		return false
	}
	req.Body.Close()
	return true
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

func httpServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func okHandler(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }

func run(t *testing.T, o Options) *Result {
	t.Helper()
	if o.Duration == 0 {
		o.Duration = time.Minute // the count bound ends these runs
	}
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// perConnFirst as a case's wantReused: every request but each connection's first.
const perConnFirst = -1

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		addr       func(t *testing.T) string
		mode       Mode
		clients    int // default 4
		timeout    time.Duration
		wantKind   Kind // of every failure
		wantFailed int64
		wantConns  func(r *Result) bool
		wantReused int64
	}{
		{
			name:      "keep-alive reuses one connection per client",
			addr:      func(t *testing.T) string { return httpServer(t, okHandler) },
			mode:      KeepAlive,
			wantConns: func(r *Result) bool { return r.Conns <= int64(r.Options.Clients) },
		},
		{
			name:      "new-conn opens a connection per request",
			addr:      func(t *testing.T) string { return httpServer(t, okHandler) },
			mode:      NewConn,
			wantConns: func(r *Result) bool { return r.Conns == r.Requests },
		},
		{
			name: "Connection: close is a success and a new connection",
			addr: func(t *testing.T) string {
				return httpServer(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Connection", "close")
					okHandler(w, r)
				})
			},
			mode:      KeepAlive,
			wantConns: func(r *Result) bool { return r.Conns == r.Requests },
		},
		{
			name: "non-2xx",
			addr: func(t *testing.T) string {
				return httpServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
			},
			// Each client's first request is on a fresh connection, the rest reuse it. A
			// client that starts late may find the 40 requests taken by the others: count
			// the connections rather than assume 4.
			mode: KeepAlive, wantKind: Non2xx, wantFailed: 40, wantReused: perConnFirst,
		},
		{
			name: "refused",
			addr: closedPort,
			mode: KeepAlive, wantKind: Refused, wantFailed: 40,
		},
		{
			name: "closed before any response is EOF on a fresh connection",
			addr: func(t *testing.T) string {
				return rawServer(t, func(c net.Conn, r *bufio.Reader) { readRequest(r) })
			},
			mode: KeepAlive, wantKind: EOF, wantFailed: 40,
		},
		{
			// The keep-alive race, made deterministic: the server answers the
			// first request and closes the connection on reading the second.
			name: "closed after one response fails the next request, reused",
			addr: func(t *testing.T) string {
				return rawServer(t, func(c net.Conn, r *bufio.Reader) {
					if readRequest(r) {
						io.WriteString(c, okResponse)
						readRequest(r)
					}
				})
			},
			// One client: requests alternate, OK then failed.
			mode: KeepAlive, clients: 1, wantKind: EOF, wantFailed: 20, wantReused: 20,
		},
		{
			name: "no answer is a timeout",
			addr: func(t *testing.T) string {
				return rawServer(t, func(c net.Conn, r *bufio.Reader) {
					readRequest(r)
					r.ReadByte() // until the client gives up
				})
			},
			mode: KeepAlive, timeout: 50 * time.Millisecond, wantKind: Timeout, wantFailed: 40,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Addr: tc.addr(t), Clients: cmp.Or(tc.clients, 4), Mode: tc.mode, Requests: 40, Timeout: tc.timeout}
			r := run(t, o)
			if r.Requests != 40 {
				t.Errorf("Requests = %d, want 40", r.Requests)
			}
			if r.Limit != "requests" {
				t.Errorf("Limit = %q, want requests", r.Limit)
			}
			if got := r.FailedTotal(); got != tc.wantFailed {
				t.Errorf("failed %d, want %d: %v (samples %v)", got, tc.wantFailed, r.Failed, r.Samples[:min(3, len(r.Samples))])
			}
			if tc.wantFailed > 0 && r.Failed[tc.wantKind] != tc.wantFailed {
				t.Errorf("failed as %v: %d, want %d (all: %v)", tc.wantKind, r.Failed[tc.wantKind], tc.wantFailed, r.Failed)
			}
			if got, want := r.OK, 40-tc.wantFailed; got != want {
				t.Errorf("OK = %d, want %d", got, want)
			}
			if tc.wantReused == perConnFirst {
				if r.Conns < 1 || r.Conns > int64(o.Clients) {
					t.Errorf("%d connections by %d clients", r.Conns, o.Clients)
				}
				tc.wantReused = r.Requests - r.Conns
			}
			if r.Reused != tc.wantReused {
				t.Errorf("failures on reused connections: %d, want %d", r.Reused, tc.wantReused)
			}
			if got := int64(r.Latency.Count()); got != r.OK {
				t.Errorf("latencies recorded %d, want one per OK request (%d)", got, r.OK)
			}
			if int64(len(r.Samples)) != r.FailedTotal() {
				t.Errorf("%d failure samples, want %d", len(r.Samples), r.FailedTotal())
			}
			if tc.wantConns != nil && !tc.wantConns(r) {
				t.Errorf("%d connections for %d requests by %d clients", r.Conns, r.Requests, o.Clients)
			}
		})
	}
}

func TestStopEndsARun(t *testing.T) {
	addr := httpServer(t, okHandler)
	l, err := Start(Options{Addr: addr, Clients: 2, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Finished() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a counter, not synchronisation
	}
	r := l.Stop()
	if r.Limit != "stopped" {
		t.Errorf("Limit = %q, want stopped", r.Limit)
	}
	if r.Requests < 10 || r.FailedTotal() != 0 {
		t.Errorf("requests %d, failed %d; want at least 10 and none failed", r.Requests, r.FailedTotal())
	}
	if again := l.Stop(); again != r {
		t.Error("a second Stop returned another result")
	}
}

func TestOptionsRefused(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want error
	}{
		{"not loopback", Options{Addr: "192.0.2.1:80", Duration: time.Second}, ErrNotLoopback},
		{"a name other than localhost", Options{Addr: "example.com:80", Duration: time.Second}, ErrNotLoopback},
		{"no duration", Options{Addr: "127.0.0.1:80"}, nil},
		{"too long", Options{Addr: "127.0.0.1:80", Duration: MaxDuration + 1}, nil},
		{"no port", Options{Addr: "127.0.0.1", Duration: time.Second}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(tc.o)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{KeepAlive, NewConn} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("pipelined"); err == nil {
		t.Error("ParseMode(pipelined) succeeded")
	}
}
