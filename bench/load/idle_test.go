package load

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// idleServer is a keep-alive HTTP server on loopback; closeIdle closes its idle
// connections, as a draining worker does.
func idleServer(t *testing.T) (addr string, closeIdle func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), func() {
		srv.SetKeepAlivesEnabled(false) // closes the idle connections
		srv.SetKeepAlivesEnabled(true)
	}
}

// waitOpen waits until n connections of l wait.
func waitOpen(t *testing.T, l *Idle, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", l.Open(), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

func TestIdleReconnects(t *testing.T) {
	addr, closeIdle := idleServer(t)
	l, err := StartIdle(IdleOptions{Addr: addr, Conns: 20, Dials: 4})
	if err != nil {
		t.Fatal(err)
	}
	waitOpen(t, l, 20)
	closeIdle()
	// Every connection was closed and came back: 20 reconnects, each with its request.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := l.Reconnected()
		if n >= 20 && l.Open() == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reconnects, %d open", n, l.Open())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	r := l.Stop()
	if len(r.Reconnects) != 20 || r.FailedTotal() != 0 || r.Requests != 40 || r.OK != 40 {
		t.Errorf("%d reconnects, %d requests, %d ok, failed %v; want 20, 40, 40, none", len(r.Reconnects), r.Requests, r.OK, r.Failed)
	}
	if n, _ := r.Peak(time.Hour); n != 20 {
		t.Errorf("peak over an hour %d, want all 20", n)
	}
}

func TestIdlePeak(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &IdleResult{}
	for _, ms := range []int{0, 100, 900, 1000, 1050, 1100, 3000} {
		r.Reconnects = append(r.Reconnects, t0.Add(time.Duration(ms)*time.Millisecond))
	}
	if n, at := r.Peak(time.Second); n != 4 || !at.Equal(t0.Add(100*time.Millisecond)) { // [100ms, 1100ms)
		t.Errorf("peak %d at %v, want 4 from +100ms", n, at.Sub(t0))
	}
}

func TestIdlePingAndStop(t *testing.T) {
	addr, _ := idleServer(t)
	l, err := StartIdle(IdleOptions{Addr: addr, Conns: 3, Ping: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitOpen(t, l, 3)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := l.Answered()
		if n > 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pings: %d requests answered", n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	r := l.Stop()
	if r.FailedTotal() != 0 || len(r.Reconnects) != 0 {
		t.Errorf("after Stop: failed %v, %d reconnects; want none (Stop's closes are not the server's)", r.Failed, len(r.Reconnects))
	}
}

func TestIdleOptions(t *testing.T) {
	for _, o := range []IdleOptions{{Addr: "10.0.0.1:80", Conns: 1}, {Addr: "127.0.0.1:80"}, {Addr: "127.0.0.1:80", Conns: MaxIdleConns + 1}, {Addr: "127.0.0.1:80", Conns: 1, Ping: -1}} {
		if _, err := StartIdle(o); err == nil {
			t.Errorf("StartIdle(%+v): no error", o)
		}
	}
}
