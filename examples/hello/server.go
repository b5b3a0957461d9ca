//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// helloHandler answers /healthz with "ok" and everything else with body.
func helloHandler(body string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, body)
	})
	return mux
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, s)
}

// closeWhenDraining sets "Connection: close" on every response once
// draining is true. net/http then closes the connection after writing that
// response, so the client's next request goes on a new connection, to
// whoever still accepts on the shared socket. Closing the connection this
// way, right after a complete response, cannot race a request the client
// has already sent, as closing an idle connection does.
func closeWhenDraining(draining *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// readHeaderTimeout is how long a connection has to deliver the header of
// a request, counted from when hello starts reading it: for a connection's
// first request, from accept. net/http closes the connection when it runs
// out. It bounds how long a connection that sends nothing can keep a
// draining hello waiting (see server.finish).
const readHeaderTimeout = 10 * time.Second

// errCut is returned by finish when it had to close a connection whose
// request a handler was still serving.
var errCut = errors.New("requests in flight were cut")

// server serves one handler on several listeners and drains in the order
// the package doc gives. It does not use http.Server.Shutdown: Shutdown
// discards a request it reads after it began, and takes a connection that
// has not delivered its first request for idle once that connection is 5s
// old (Go issue 22682), so it closes connections whose request is late.
type server struct {
	http      *http.Server
	listeners []namedListener
	serving   sync.WaitGroup // one per Serve loop
	draining  atomic.Bool    // set by stopAccepting, read by every request
	// failed receives the error of a Serve loop that stopped before
	// stopAccepting. It has room for one per listener.
	failed chan error

	mu sync.Mutex
	// conns holds every open connection, in its state: StateNew (accepted,
	// the header of its first request not all read yet), StateActive (a
	// request's header is read: the request is being served) or StateIdle
	// (kept alive after a response).
	conns     map[net.Conn]http.ConnState
	closeIdle bool          // set by closeIdleConns: idle connections are closed
	gone      chan struct{} // cap 1: poked when a connection leaves conns
}

// newServer returns a server for h on listeners; it takes ownership of them.
func newServer(listeners []namedListener, h http.Handler, log *slog.Logger) *server {
	s := &server{
		listeners: listeners,
		failed:    make(chan error, len(listeners)),
		conns:     make(map[net.Conn]http.ConnState),
		gone:      make(chan struct{}, 1),
	}
	s.http = &http.Server{
		Handler:           closeWhenDraining(&s.draining, h),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// connState keeps conns up to date. Once closeIdleConns has run, it closes
// a connection as soon as it turns idle; net/http then reports it closed.
func (s *server) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
		select {
		case s.gone <- struct{}{}:
		default: // already poked
		}
		return
	case http.StateIdle:
		if s.closeIdle {
			c.Close()
		}
	}
	s.conns[c] = state
}

// open returns how many connections are open.
func (s *server) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// start starts one Serve loop per listener.
func (s *server) start() {
	for _, l := range s.listeners {
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			err := s.http.Serve(l)
			if !s.draining.Load() {
				s.failed <- fmt.Errorf("serve %s (%s): %w", l.name, l.Addr(), err)
			}
		}()
	}
}

// stopAccepting marks the server draining, closes this process's copy of
// every listener and returns once every Serve loop has returned: from then
// on no connection is accepted, and every response says Connection: close.
func (s *server) stopAccepting() {
	s.draining.Store(true)
	for _, l := range s.listeners {
		l.Close() // our copy only: the socket stays open in the supervisor
	}
	s.serving.Wait()
}

// drainWindow keeps serving the open connections (each closes after its
// next response) for at most d, and returns early when none is left.
// Call it after stopAccepting, so that the count can only go down.
func (s *server) drainWindow(d time.Duration) {
	s.waitClosed(d)
}

// closeIdleConns closes every idle keep-alive connection (one that has
// answered a request and waits for the next), now and, from now on, as
// soon as one turns idle. It leaves the others open: a new connection
// (StateNew) has a request on its way, and an active one is serving one;
// each closes after its response, which says Connection: close. It
// returns how many connections it closed and how many it left open.
func (s *server) closeIdleConns() (closed, left int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeIdle = true
	for c, state := range s.conns {
		if state == http.StateIdle && !pending(c) {
			c.Close()
			closed++
		}
	}
	return closed, len(s.conns) - closed
}

// pending reports whether the client of c has sent bytes hello has not read yet: a request
// on its way, though net/http still calls the connection idle (it says active only once its
// goroutine has read them, which on a loaded machine can take a while). Closing such a
// connection would cut that request (RFC 9112 §9.6); left open, the request is answered
// with Connection: close. It asks the kernel (SIOCINQ), so what is left of the race is the
// few microseconds between the look and the close, not a scheduling delay.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n > 0
}

// closeIdleSpread closes the connections idle now one at a time, evenly over d: the i-th
// of n at i*d/n, each only if it is still idle (one whose client sent a request meanwhile
// is answered with Connection: close and closes itself). Their clients, long-lived ones
// that send nothing, then reconnect to the next generation a few at a time rather than
// all at once. It returns early when no connection is left, and says how many it closed.
// Call it after stopAccepting.
func (s *server) closeIdleSpread(d time.Duration) (closed int) {
	s.mu.Lock()
	var idle []net.Conn
	for c, state := range s.conns {
		if state == http.StateIdle {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	n := len(idle)
	if n == 0 {
		return 0
	}
	start := time.Now()
	// due is the time of the i-th close; in floating point, as d*i may overflow.
	due := func(i int) time.Time {
		return start.Add(time.Duration(float64(d) * float64(i) / float64(n)))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < n; {
		// Every close due by now, in one go: a wake-up that came late catches up.
		for now := time.Now(); i < n && !due(i).After(now); i++ {
			if s.closeIfIdle(idle[i]) {
				closed++
			}
		}
		if i == n || s.open() == 0 {
			break
		}
		timer.Reset(time.Until(due(i)))
		select {
		case <-timer.C:
		case <-s.gone: // maybe none is left
		}
	}
	return closed
}

// closeIfIdle closes c if it is open and idle, and no request is on its way (pending).
func (s *server) closeIfIdle(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c] != http.StateIdle || pending(c) {
		return false
	}
	c.Close()
	return true
}

// finish waits, up to timeout, for the connections closeIdleConns left
// open: for requests in flight, and for the first request of each new
// connection, answered when it arrives. It returns early when none is
// left. When timeout runs out it closes every connection still open and
// returns how many of those had not delivered a request, which loses
// nothing, and errCut if a request in flight was cut.
func (s *server) finish(timeout time.Duration) (unused int, err error) {
	if s.waitClosed(timeout) {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := 0
	for c, state := range s.conns {
		c.Close()
		switch state {
		case http.StateNew:
			unused++
		case http.StateActive:
			cut++
		} // StateIdle: closeIdleConns or connState closed it already
	}
	if cut > 0 {
		return unused, fmt.Errorf("%d connections: %w", cut, errCut)
	}
	return unused, nil
}

// waitClosed waits until no connection is open, or d has passed, and says
// whether none is open. Call it after stopAccepting, so that the count
// can only go down.
func (s *server) waitClosed(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for s.open() > 0 {
		select {
		case <-timer.C:
			return false
		case <-s.gone:
		}
	}
	return true
}
