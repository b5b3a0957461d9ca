//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
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

// server serves one handler on several listeners and drains in the order
// the package doc gives.
type server struct {
	http      *http.Server
	listeners []namedListener
	serving   sync.WaitGroup // one per Serve loop
	draining  atomic.Bool    // set by stopAccepting, read by every request
	open      atomic.Int64   // connections open (ConnState)
	closed    chan struct{}  // cap 1: poked when open drops to 0
	// failed receives the error of a Serve loop that stopped before
	// stopAccepting. It has room for one per listener.
	failed chan error
}

// newServer returns a server for h on listeners; it takes ownership of them.
func newServer(listeners []namedListener, h http.Handler, log *slog.Logger) *server {
	s := &server{
		listeners: listeners,
		closed:    make(chan struct{}, 1),
		failed:    make(chan error, len(listeners)),
	}
	s.http = &http.Server{
		Handler:           closeWhenDraining(&s.draining, h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// connState counts open connections, so that the drain window can end as
// soon as none is left.
func (s *server) connState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		if s.open.Add(-1) == 0 {
			select {
			case s.closed <- struct{}{}:
			default: // already poked
			}
		}
	}
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
	window := time.NewTimer(d)
	defer window.Stop()
	for s.open.Load() > 0 {
		select {
		case <-window.C:
			return
		case <-s.closed:
		}
	}
}

// shutdown closes the connections still idle and waits, up to timeout, for
// the requests in flight. If the timeout runs out it cuts every connection
// and returns the context's error.
func (s *server) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
		return err
	}
	return nil
}
