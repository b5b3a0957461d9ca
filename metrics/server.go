package metrics

import (
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

// Server serves the metrics on one listener. Close stops it; safe to call twice.
type Server struct {
	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// Serve starts serving h on ln, which it owns from now on (Close closes it).
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
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		err := s.srv.Serve(limitListener(ln, maxConns))
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics: no longer serving", "err", err)
		}
	}()
	return s
}

// Close stops accepting, closes every connection (a scrape in flight gets cut off) and
// waits until the server's goroutine is done.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.once.Do(func() { s.srv.Close() })
	<-s.done
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
	l.slots <- struct{}{}
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
