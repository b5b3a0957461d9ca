package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Bounds of the HTTP server: a scraper that is slow or hostile holds at most maxConns
// connections for at most these times, and never the master loop.
const (
	maxConns          = 8
	maxHeaderBytes    = 8 << 10
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	scrapeTimeout     = 5 * time.Second
)

// Handler serves the metrics of pub's snapshots at path, GET and HEAD only, with a private
// registry (no Go runtime or process metrics: they would describe whichever master serves,
// and reset at each upgrade). At most two scrapes run at once.
func Handler(pub *Publisher, path string, log *slog.Logger) http.Handler {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(pub))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2,
		// gzip costs the master a compressor per scrape (hundreds of KiB) to save a few KiB
		// on the loopback.
		DisableCompression: true,
		Timeout:            scrapeTimeout,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != path:
			http.NotFound(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the metrics endpoint is read-only", http.StatusMethodNotAllowed)
		default:
			h.ServeHTTP(w, r)
			// A scrape's garbage (the families, the fd and sock_diag walks) would stay in
			// the master's RSS until the next GC cycles, which an idle master seldom runs:
			// give it back now. A few hundred microseconds per scrape.
			debug.FreeOSMemory()
		}
	})
}

// slogLogger is promhttp's error log: a failed scrape (the connections could not be
// counted) is logged, once per scrape.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Println(v ...any) { l.log.Warn("metrics: scrape", "err", v) }

// Server serves the metrics on one listener.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	done    chan struct{} // closed when Serve has returned
	stopped chan struct{} // closed when every connection is closed
	once    sync.Once
}

// Serve starts serving h on ln, which it owns from now on (Stop closes it).
func Serve(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readHeaderTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		ln:      limitListener(ln, maxConns),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		err := s.srv.Serve(s.ln)
		// Stop closes the listener before it tells the server: either error says so.
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("metrics: no longer serving", "err", err)
		}
	}()
	return s
}

// stopGrace bounds how long a scrape in flight when Stop is called may take to finish.
const stopGrace = 2 * time.Second

// Stop stops accepting at once: when it returns, no new scrape reaches this server (the
// next master may accept on the same socket from then on). Scrapes in flight finish, up
// to stopGrace, on their own goroutines; Wait waits for them. Safe on nil and twice.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.ln.Close()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
			defer cancel()
			if s.srv.Shutdown(ctx) != nil {
				s.srv.Close()
			}
			<-s.done
			close(s.stopped)
		}()
	})
}

// Wait waits until a stopped server's last scrape is done (at most stopGrace after Stop).
// Safe on nil.
func (s *Server) Wait() {
	if s != nil {
		<-s.stopped
	}
}

// limitListener accepts at most n connections at a time; the next waits in the backlog.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limited{Listener: ln, slots: make(chan struct{}, n)}
}

type limited struct {
	net.Listener
	slots chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.slots <- struct{}{} // a slot frees when a connection closes: Shutdown closes idle ones
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
