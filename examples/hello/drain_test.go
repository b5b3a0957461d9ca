//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDrainFailsNoRequest is the drain's promise: 32 keep-alive clients
// hammer hello; the test takes over the shared listening socket, as the
// next generation would, and stops hello with SIGTERM. No request may
// fail: each client follows Connection: close to a new connection, which
// reaches hello (while it still accepts) or the test's server.
func TestDrainFailsNoRequest(t *testing.T) {
	const clients = 32
	const maxRequests = 1_000_000 // per client: a bound against a hang, never reached

	ln, f := listenTCP(t)
	p := start(t, spec{files: []passed{{"http", f}}})
	p.expectNotify(t, "READY=1")
	addr := ln.Addr().String()

	results := make(chan hammerResult, clients)
	var onWorker sync.WaitGroup // every client is warm
	onWorker.Add(clients)
	for range clients {
		go func() {
			results <- hammer(addr, p.pid(), maxRequests, onWorker.Done)
		}()
	}
	waitGroup(t, &onWorker, fmt.Sprintf("%d answers from hello to every client", warmup))

	// The next holder of the socket: it shares the listening socket with
	// hello from now on, and is alone on it once hello stops accepting.
	next := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "pid=%d next holder\n", os.Getpid())
	})}
	go next.Serve(ln)
	defer next.Close()

	p.signal(t, syscall.SIGTERM)

	var total hammerResult
	for i := range clients {
		var r hammerResult
		select {
		case r = <-results:
		case <-time.After(waitLimit):
			t.Fatalf("only %d of %d clients finished within %v", i, clients, waitLimit)
		}
		if r.err != nil {
			t.Errorf("client %d: %v", i, r.err)
		}
		if r.err == nil && !r.reachedNext {
			t.Errorf("client %d never reached the next holder", i)
		}
		total.requests += r.requests
		total.closes += r.closes
	}
	p.expectNotify(t, "STOPPING=1")
	if got := p.wait(t); got != 0 {
		t.Errorf("exit status: got %d, want 0", got)
	}
	if total.closes == 0 {
		t.Errorf("no response from hello carried Connection: close")
	}
	t.Logf("%d requests answered by hello, %d with Connection: close", total.requests, total.closes)
}

// hammerResult is what one client saw.
type hammerResult struct {
	requests    int   // answered by hello
	closes      int   // of those, with Connection: close
	reachedNext bool  // a request was answered by the next holder
	err         error // the first failed request: the client stops there
}

// warmup is how many answers from hello each client waits for before the
// test stops hello, so that the drain meets busy keep-alive connections.
const warmup = 20

// hammer sends requests one after another on a keep-alive connection,
// opening a new one after each Connection: close, until one is answered by
// someone other than hello (pid). It calls warm once: after hello's
// warmup-th answer, or when it stops before that.
func hammer(addr string, pid, limit int, warm func()) (r hammerResult) {
	warm = sync.OnceFunc(warm)
	defer warm()
	fromHello := fmt.Sprintf("pid=%d ", pid)
	var c *conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for i := range limit {
		if c == nil {
			var err error
			if c, err = dial(addr); err != nil {
				r.err = fmt.Errorf("request %d: %w", i, err)
				return r
			}
		}
		// This client never retries, so every failure counts. POST: the
		// kind of request no client may retry on its own.
		resp, body, err := c.do("POST", "/")
		if err != nil {
			r.err = fmt.Errorf("request %d: %w", i, err)
			return r
		}
		if resp.StatusCode != http.StatusOK {
			r.err = fmt.Errorf("request %d: status %d, body %q", i, resp.StatusCode, body)
			return r
		}
		if !strings.HasPrefix(body, fromHello) {
			r.reachedNext = true
			return r
		}
		if r.requests++; r.requests == warmup {
			warm()
		}
		if resp.Close {
			r.closes++
			c.Close()
			c = nil
		}
	}
	r.err = fmt.Errorf("still answered by hello after %d requests", limit)
	return r
}

// TestDrainIdleConnection checks that a keep-alive connection idle when the
// drain starts is not closed then: it is still served during the window,
// and closed only after it (or after its next response).
func TestDrainIdleConnection(t *testing.T) {
	t.Run("served in the window", func(t *testing.T) {
		// A window that never ends on its own: hello exits only because
		// the window ends early when no connection is left.
		ln, f := listenTCP(t)
		p := start(t, spec{files: []passed{{"http", f}}, args: []string{"-drain", "1h"}})
		p.expectNotify(t, "READY=1")
		a, b := mustDial(t, ln.Addr().String()), mustDial(t, ln.Addr().String())
		for _, c := range []*conn{a, b} {
			if resp, _ := c.mustGet(t, "/"); resp.Close {
				t.Fatal("Connection: close before the drain")
			}
		}
		p.signal(t, syscall.SIGTERM)
		p.expectNotify(t, "STOPPING=1") // hello no longer accepts
		if resp, _ := a.mustGet(t, "/"); !resp.Close {
			t.Error("a: response in the drain window without Connection: close")
		}
		a.expectEOF(t)
		b.expectOpen(t) // hello closed a, not b: b is still idle
		if resp, _ := b.mustGet(t, "/"); !resp.Close {
			t.Error("b: response in the drain window without Connection: close")
		}
		b.expectEOF(t)
		if got := p.wait(t); got != 0 {
			t.Errorf("exit status: got %d, want 0", got)
		}
	})
	t.Run("closed after the window", func(t *testing.T) {
		ln, f := listenTCP(t)
		p := start(t, spec{files: []passed{{"http", f}}, args: []string{"-drain", "100ms"}})
		p.expectNotify(t, "READY=1")
		c := mustDial(t, ln.Addr().String())
		c.mustGet(t, "/")
		p.signal(t, syscall.SIGTERM)
		p.expectNotify(t, "STOPPING=1")
		c.expectEOF(t) // never used again: Shutdown closes it
		if got := p.wait(t); got != 0 {
			t.Errorf("exit status: got %d, want 0", got)
		}
		if got := p.log.lines("msg=stopped"); len(got) != 1 {
			t.Errorf("log: got %d \"stopped\" lines, want 1", len(got))
		}
	})
}

// TestDrainLateFirstRequest checks that a connection hello accepted before
// the drain is not taken for idle while its first request has not arrived:
// on a busy machine, seconds can pass between a client's connect and its
// request reaching hello. The request, sent only after the drain began, is
// answered, with Connection: close.
func TestDrainLateFirstRequest(t *testing.T) {
	t.Run("in the window", func(t *testing.T) {
		// A window that never ends on its own: the request arrives in it,
		// and hello exits because no connection is left.
		ln, f := listenTCP(t)
		p := start(t, spec{files: []passed{{"http", f}}, args: []string{"-drain", "1h"}})
		p.expectNotify(t, "READY=1")
		late := mustDial(t, ln.Addr().String())
		waitAccepted(t, ln.Addr().(*net.TCPAddr), late.LocalAddr().(*net.TCPAddr))
		p.signal(t, syscall.SIGTERM)
		p.expectNotify(t, "STOPPING=1") // the drain began: hello no longer accepts
		expectLastAnswer(t, late)
		if got := p.wait(t); got != 0 {
			t.Errorf("exit status: got %d, want 0", got)
		}
	})
	t.Run("after the window", func(t *testing.T) {
		// No window at all (before issue 8, the end of the window was
		// the end of the wait for such a request): idle keep-alive
		// connections are closed at once, a new one is waited for.
		ln, f := listenTCP(t)
		p := start(t, spec{files: []passed{{"http", f}}, args: []string{"-drain", "0", "-shutdown-timeout", "1h"}})
		p.expectNotify(t, "READY=1")
		idle := mustDial(t, ln.Addr().String())
		idle.mustGet(t, "/")
		late := mustDial(t, ln.Addr().String())
		waitAccepted(t, ln.Addr().(*net.TCPAddr), late.LocalAddr().(*net.TCPAddr))
		p.signal(t, syscall.SIGTERM)
		p.expectNotify(t, "STOPPING=1")
		line := p.waitLog(t, "drain window over")
		if got := logValue(line, "waiting"); got != "1" && got != "2" {
			// 2: idle had not turned idle yet; it is closed when it does.
			t.Errorf("log %q: waiting=%s, want the new connection (and at most idle)", line, got)
		}
		idle.expectEOF(t)
		late.expectOpen(t)
		expectLastAnswer(t, late)
		if got := p.wait(t); got != 0 {
			t.Errorf("exit status: got %d, want 0", got)
		}
		if got := p.log.lines("closed connections that sent no request"); len(got) != 0 {
			t.Errorf("log: %q", got)
		}
	})
}

// expectLastAnswer sends a request on c, expects a whole 200 response
// with Connection: close, then the server's close.
func expectLastAnswer(t *testing.T, c *conn) {
	t.Helper()
	resp, body, err := c.do("GET", "/")
	if err != nil {
		t.Fatalf("request sent during the drain: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "pid=") {
		t.Errorf("got %d %q, want 200 and hello's answer", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Error("response during the drain without Connection: close")
	}
	c.expectEOF(t)
}

// TestDrainSilentConnection checks the drain's bound on a connection that
// never delivers a request: hello closes it when -shutdown-timeout runs
// out after the window, and exits 0, since it read no request to fail.
func TestDrainSilentConnection(t *testing.T) {
	tests := []struct {
		name string
		sent string // before the drain; never completed
	}{
		{"nothing sent", ""},
		{"part of a header", "GET / HTTP/1.1\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, f := listenTCP(t)
			p := start(t, spec{files: []passed{{"http", f}}, args: []string{"-drain", "0", "-shutdown-timeout", "100ms"}})
			p.expectNotify(t, "READY=1")
			c := mustDial(t, ln.Addr().String())
			if _, err := io.WriteString(c, tt.sent); err != nil {
				t.Fatal(err)
			}
			waitAccepted(t, ln.Addr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr))
			p.signal(t, syscall.SIGTERM)
			p.expectNotify(t, "STOPPING=1")
			c.expectEOFOrReset(t)
			if got := p.wait(t); got != 0 {
				t.Errorf("exit status: got %d, want 0", got)
			}
			if got := p.log.lines("closed connections that sent no request", "count=1"); len(got) != 1 {
				t.Errorf("log: got %q, want 1 line", got)
			}
		})
	}
}

// TestShutdownTimeout checks the bound on a request in flight: when the
// wait after the window runs out with a handler still serving a request,
// finish cuts the connection and returns errCut (hello then exits 1). It
// runs the server in this process, with a handler that holds the request.
func TestShutdownTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	hold := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	})
	s := newServer([]namedListener{{"http", ln}}, hold, slog.New(slog.DiscardHandler))
	s.start()
	c := mustDial(t, ln.Addr().String())
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: hello\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatalf("handler not called within %v", waitLimit)
	}
	s.stopAccepting()
	s.drainWindow(0)
	if closed, left := s.closeIdleConns(); closed != 0 || left != 1 {
		t.Errorf("closeIdleConns: got %d closed, %d left; want 0, 1", closed, left)
	}
	unused, err := s.finish(time.Millisecond)
	if !errors.Is(err, errCut) {
		t.Errorf("finish: got error %v, want errCut", err)
	}
	if unused != 0 {
		t.Errorf("finish: got %d unused connections, want 0", unused)
	}
	c.expectEOFOrReset(t)
}

// waitGroup waits for wg, failing after waitLimit.
func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("waiting for %s: not within %v", what, waitLimit)
	}
}

// waitAccepted waits until the connection from client to server has been
// accepted by some process. Nothing in this test accepts on server, so it
// is hello. The kernel lists a connection still in the accept queue with
// inode 0 in /proc/net/tcp, and gives it an inode when accept(2) makes a
// file of it.
func waitAccepted(t *testing.T, server, client *net.TCPAddr) {
	t.Helper()
	local, remote := procNetAddr(server), procNetAddr(client)
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		table, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(table)) {
			f := strings.Fields(line)
			if len(f) > 9 && f[1] == local && f[2] == remote && f[9] != "0" {
				return
			}
		}
		time.Sleep(time.Millisecond) // polling a condition, not waiting for time
	}
	t.Fatalf("connection %v → %v not accepted within %v", client, server, waitLimit)
}

// procNetAddr formats an IPv4 address as /proc/net/tcp does: the address
// in host (little-endian) byte order, then the port, in upper-case hex.
func procNetAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}
