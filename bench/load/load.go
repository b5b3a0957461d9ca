package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how the clients use connections.
type Mode int

const (
	// KeepAlive: each client keeps one connection for request after
	// request, and opens a new one only when the server closed it
	// (Connection: close) or a request on it failed.
	KeepAlive Mode = iota
	// NewConn: each request goes on a new connection and asks for it to be
	// closed (Connection: close), the harsh case for a listener handover.
	NewConn
)

func (m Mode) String() string {
	if m == NewConn {
		return "new-conn"
	}
	return "keep-alive"
}

// ParseMode parses "keep-alive" or "new-conn".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "keep-alive", "keepalive":
		return KeepAlive, nil
	case "new-conn", "newconn":
		return NewConn, nil
	}
	return 0, fmt.Errorf("load: mode %q: want keep-alive or new-conn", s)
}

// Defaults and limits of Options.
const (
	DefaultClients  = 64
	DefaultTimeout  = 5 * time.Second
	DefaultRequests = 100_000_000 // the count bound when Options.Requests is 0
	MaxDuration     = 24 * time.Hour
	// MaxSamples is how many failures a Result keeps one by one.
	MaxSamples = 100_000
)

// ErrNotLoopback is returned for a target that is not a loopback address.
var ErrNotLoopback = errors.New("load: target is not a loopback address")

// Options say what load to make. Addr and Duration are required.
type Options struct {
	Addr     string        // host:port; the host must be a loopback address or "localhost"
	Path     string        // request path; default "/"
	Clients  int           // concurrent clients; default DefaultClients
	Mode     Mode          // KeepAlive or NewConn
	Duration time.Duration // stop after this long; at most MaxDuration
	Requests int64         // stop after this many requests in all; 0 means DefaultRequests
	Timeout  time.Duration // per request, dial included; default DefaultTimeout
}

func (o *Options) check() error {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("load: address %q: %w", o.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, o.Addr)
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.Clients == 0 {
		o.Clients = DefaultClients
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Requests == 0 {
		o.Requests = DefaultRequests
	}
	switch {
	case o.Clients < 0 || o.Clients > 10000:
		return fmt.Errorf("load: %d clients: want 1 to 10000", o.Clients)
	case o.Duration <= 0 || o.Duration > MaxDuration:
		return fmt.Errorf("load: duration %v: want more than 0 and at most %v", o.Duration, MaxDuration)
	case o.Requests < 0:
		return fmt.Errorf("load: %d requests: must not be negative", o.Requests)
	case o.Timeout < 0:
		return fmt.Errorf("load: timeout %v: must not be negative", o.Timeout)
	case o.Mode != KeepAlive && o.Mode != NewConn:
		return fmt.Errorf("load: unknown mode %d", o.Mode)
	}
	return nil
}

// Failure is one failed request.
type Failure struct {
	At     time.Time // when the failure was seen
	Kind   Kind
	Reused bool   // sent on a connection that had already served a request
	Err    string // the error, or the status line of a non-2xx response
}

// Result is what a load run measured.
type Result struct {
	Options  Options
	Start    time.Time
	Elapsed  time.Duration
	Requests int64           // requests sent or attempted: OK plus every failure
	OK       int64           // complete 2xx responses
	Failed   [numKinds]int64 // failures by Kind
	Reused   int64           // failures on a connection that had served a request
	Conns    int64           // connections opened
	Latency  Histogram       // of the OK requests
	Samples  []Failure       // the first MaxSamples failures, in no particular order
	Limit    string          // what ended the run: "stopped", "duration" or "requests"
}

// FailedTotal returns the number of failed requests of every kind.
func (r *Result) FailedTotal() int64 {
	var n int64
	for _, c := range r.Failed {
		n += c
	}
	return n
}

// Throughput returns the successful requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Load is a load run in progress, from Start.
type Load struct {
	opts     Options
	req      []byte
	dialer   net.Dialer
	ctx      context.Context
	cancel   context.CancelFunc
	issued   atomic.Int64 // requests claimed, for the count bound
	finished atomic.Int64 // requests completed or failed, for progress
	clients  []*clientCounters
	wg       sync.WaitGroup
	start    time.Time
	once     sync.Once
	result   *Result
	limit    atomic.Value // string
}

// Start checks opts and starts the clients. The run ends by itself when
// opts.Duration has passed or opts.Requests were made; Stop ends it earlier.
func Start(opts Options) (*Load, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	l := &Load{opts: opts, dialer: net.Dialer{Timeout: opts.Timeout}}
	l.req = request(opts)
	l.ctx, l.cancel = context.WithTimeout(context.Background(), opts.Duration)
	l.start = time.Now()
	l.clients = make([]*clientCounters, opts.Clients)
	for i := range l.clients {
		c := &client{l: l, clientCounters: &clientCounters{}}
		l.clients[i] = c.clientCounters
		l.wg.Add(1)
		go c.run()
	}
	return l, nil
}

// Run makes the load of opts until it ends by itself or ctx is done.
func Run(ctx context.Context, opts Options) (*Result, error) {
	l, err := Start(opts)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
	case <-l.Done():
	}
	return l.Stop(), nil
}

// Done is closed when the run has ended by itself (duration or count).
func (l *Load) Done() <-chan struct{} { return l.ctx.Done() }

// Finished returns the number of requests completed or failed so far.
func (l *Load) Finished() int64 { return l.finished.Load() }

// Stop ends the run: no client starts another request; requests in flight
// complete or fail within the request timeout. It returns the merged result.
// Safe to call more than once; later calls return the same result.
func (l *Load) Stop() *Result {
	l.once.Do(func() {
		l.limit.CompareAndSwap(nil, "stopped")
		if l.ctx.Err() != nil {
			l.limit.CompareAndSwap("stopped", "duration")
		}
		l.cancel()
		l.wg.Wait()
		r := &Result{Options: l.opts, Start: l.start, Elapsed: time.Since(l.start), Limit: l.limit.Load().(string)}
		for _, c := range l.clients {
			r.merge(c)
		}
		l.result = r
	})
	return l.result
}

func (r *Result) merge(c *clientCounters) {
	r.Requests += c.ok + c.failedTotal()
	r.OK += c.ok
	for k, n := range c.failed {
		r.Failed[k] += n
	}
	r.Reused += c.reused
	r.Conns += c.conns
	r.Latency.Merge(&c.hist)
	room := MaxSamples - len(r.Samples)
	r.Samples = append(r.Samples, c.samples[:min(room, len(c.samples))]...)
}

// request is the bytes of every request of a run.
func request(o Options) []byte {
	s := "GET " + o.Path + " HTTP/1.1\r\nHost: " + o.Addr + "\r\nUser-Agent: baton-bench\r\n"
	if o.Mode == NewConn {
		s += "Connection: close\r\n"
	}
	return []byte(s + "\r\n")
}

// clientCounters is what one client measured; only its client writes it.
type clientCounters struct {
	ok      int64
	failed  [numKinds]int64
	reused  int64
	conns   int64
	hist    Histogram
	samples []Failure
}

func (c *clientCounters) failedTotal() int64 {
	var n int64
	for _, f := range c.failed {
		n += f
	}
	return n
}

// client is one of the concurrent clients: one request at a time.
type client struct {
	l *Load
	*clientCounters
	conn   net.Conn
	br     *bufio.Reader
	served int // requests answered on conn
}
