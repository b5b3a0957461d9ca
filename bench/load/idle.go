package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Idle is the other load: many long-lived connections that are idle nearly all the time,
// as websocket, gRPC or chat clients are. Each connection makes one request (so the
// server holds it as an idle keep-alive connection), then waits. When the server closes
// it (a draining worker), the client opens a new one at once and makes one request on it:
// a reconnect, timed. With Ping set each connection also makes a request every Ping while
// it waits, which is when a server's close can race a request.
//
// Like Load, it never retries: a failed request is counted and classified; a failed dial
// is one too, and the connection tries again after FailPause.
type Idle struct {
	opts   IdleOptions
	req    []byte
	dialer net.Dialer
	start  time.Time

	open     atomic.Int64 // connections that have made their request and wait
	recon    atomic.Int64 // reconnects so far
	answered atomic.Int64 // requests answered 2xx so far
	stopping atomic.Bool
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn // by client, while one is open: Stop closes them
	res   []*idleClient
}

// IdleOptions say what idle load to make. Addr is required.
type IdleOptions struct {
	Addr    string        // host:port, loopback only
	Path    string        // default "/"
	Conns   int           // connections held; 1 to MaxIdleConns
	Timeout time.Duration // per request, dial included; default DefaultTimeout
	Ping    time.Duration // a request every Ping on each waiting connection; 0: none
	// Dials bounds the connections being opened at once at the start (default 64), so
	// that the start does not overflow the listen backlog and measure SYN retries.
	Dials int
}

// MaxIdleConns bounds IdleOptions.Conns: each is a file descriptor here and one in the
// server.
const MaxIdleConns = 100_000

// FailPause is how long a connection whose dial or request failed waits before it tries
// again: a stopped service is not hammered.
const FailPause = 50 * time.Millisecond

// IdleResult is what an idle load measured.
type IdleResult struct {
	Options    IdleOptions
	Start      time.Time
	Elapsed    time.Duration
	Requests   int64
	OK         int64
	Failed     [numKinds]int64
	Samples    []Failure
	Reconnects []time.Time // each reconnect's dial, in order
}

type idleClient struct {
	requests, ok int64
	failed       [numKinds]int64
	samples      []Failure
	reconnects   []time.Time
}

// StartIdle opens the connections and returns at once; Ready says when all of them wait.
func StartIdle(o IdleOptions) (*Idle, error) {
	lo := Options{Addr: o.Addr, Path: o.Path, Clients: 1, Duration: time.Hour, Timeout: o.Timeout}
	if err := lo.check(); err != nil {
		return nil, err
	}
	o.Path, o.Timeout = lo.Path, lo.Timeout
	switch {
	case o.Conns < 1 || o.Conns > MaxIdleConns:
		return nil, fmt.Errorf("load: %d idle connections: want 1 to %d", o.Conns, MaxIdleConns)
	case o.Ping < 0:
		return nil, fmt.Errorf("load: ping %v: must not be negative", o.Ping)
	}
	if o.Dials <= 0 {
		o.Dials = 64
	}
	l := &Idle{opts: o, start: time.Now(), conns: make([]net.Conn, o.Conns)}
	l.req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", o.Path, o.Addr)
	l.dialer.Timeout = o.Timeout
	gate := make(chan struct{}, o.Dials)
	for i := range o.Conns {
		c := &idleClient{}
		l.res = append(l.res, c)
		l.wg.Add(1)
		go l.run(i, c, gate)
	}
	return l, nil
}

// Open returns how many connections wait now.
func (l *Idle) Open() int { return int(l.open.Load()) }

// Reconnected returns how many reconnects were made so far; Answered, how many requests
// were answered 2xx.
func (l *Idle) Reconnected() int { return int(l.recon.Load()) }
func (l *Idle) Answered() int    { return int(l.answered.Load()) }

// run is one connection's life: connect, one request, wait; again when the server closes.
func (l *Idle) run(i int, c *idleClient, gate chan struct{}) {
	defer l.wg.Done()
	gate <- struct{}{}
	first := true
	for !l.stopping.Load() {
		conn, br, err := l.connect(i, c, first)
		if first {
			<-gate
			first = false
		}
		if err != nil {
			time.Sleep(FailPause) // a pause after a failure, not a synchronisation
			continue
		}
		l.open.Add(1)
		l.wait(conn, br, c)
		l.open.Add(-1)
		l.setConn(i, nil)
		conn.Close()
	}
}

// connect dials and makes the connection's first request. A reconnect (not the first
// connection) is timed at its dial.
func (l *Idle) connect(i int, c *idleClient, first bool) (net.Conn, *bufio.Reader, error) {
	conn, err := l.dialer.Dial("tcp", l.opts.Addr)
	if err != nil {
		if !l.stopping.Load() {
			c.fail(Classify(err), false, err.Error())
		}
		return nil, nil, err
	}
	if !first {
		c.reconnects = append(c.reconnects, time.Now())
		l.recon.Add(1)
	}
	l.setConn(i, conn)
	br := bufio.NewReaderSize(conn, 1024)
	if closed, err := l.request(conn, br, c, false); err != nil || closed {
		conn.Close()
		l.setConn(i, nil)
		if err == nil {
			err = errors.New("closed after its first response")
		}
		return nil, nil, err
	}
	return conn, br, nil
}

// wait waits on an idle connection until the server closes it (or Stop), pinging if asked.
func (l *Idle) wait(conn net.Conn, br *bufio.Reader, c *idleClient) {
	for !l.stopping.Load() {
		deadline := time.Time{}
		if l.opts.Ping > 0 {
			deadline = time.Now().Add(l.opts.Ping)
		}
		conn.SetReadDeadline(deadline)
		_, err := br.Peek(1)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if closed, err := l.request(conn, br, c, true); err != nil || closed {
				return
			}
		case err != nil:
			return // the server closed the idle connection: reconnect
		default:
			if !l.stopping.Load() {
				c.fail(Other, true, "data on an idle connection")
			}
			return
		}
	}
}

// request makes one request on conn and says whether the server asked to close it.
func (l *Idle) request(conn net.Conn, br *bufio.Reader, c *idleClient, reused bool) (closed bool, err error) {
	c.requests++
	conn.SetDeadline(time.Now().Add(l.opts.Timeout))
	defer conn.SetDeadline(time.Time{})
	fail := func(err error, what string) (bool, error) {
		if l.stopping.Load() {
			c.requests-- // cut by Stop: not the server's doing
			return true, err
		}
		c.fail(Classify(err), reused, what+err.Error())
		return true, err
	}
	if _, err := conn.Write(l.req); err != nil {
		return fail(err, "write: ")
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(err, "read response: ")
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(err, "read body: ")
	}
	if resp.StatusCode/100 != 2 {
		c.fail(Non2xx, reused, "status "+resp.Status)
		return resp.Close, nil
	}
	c.ok++
	l.answered.Add(1)
	return resp.Close, nil
}

func (c *idleClient) fail(k Kind, reused bool, msg string) {
	c.failed[k]++
	if len(c.samples) < 10 {
		c.samples = append(c.samples, Failure{At: time.Now(), Kind: k, Reused: reused, Err: msg})
	}
}

func (l *Idle) setConn(i int, c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping.Load() && c != nil {
		c.Close()
		return
	}
	l.conns[i] = c
}

// Stop closes every connection, waits for the clients and returns what they measured.
func (l *Idle) Stop() *IdleResult {
	l.mu.Lock()
	l.stopping.Store(true)
	for _, c := range l.conns {
		if c != nil {
			c.Close()
		}
	}
	l.mu.Unlock()
	l.wg.Wait()
	r := &IdleResult{Options: l.opts, Start: l.start, Elapsed: time.Since(l.start)}
	for _, c := range l.res {
		r.Requests += c.requests
		r.OK += c.ok
		for k, n := range c.failed {
			r.Failed[k] += n
		}
		if len(r.Samples) < MaxSamples {
			r.Samples = append(r.Samples, c.samples...)
		}
		r.Reconnects = append(r.Reconnects, c.reconnects...)
	}
	slices.SortFunc(r.Reconnects, func(a, b time.Time) int { return a.Compare(b) })
	return r
}

// FailedTotal is the number of failed requests, of every kind.
func (r *IdleResult) FailedTotal() int64 {
	var n int64
	for _, f := range r.Failed {
		n += f
	}
	return n
}

// Peak is the most reconnects within any window of length w, and when that window began.
func (r *IdleResult) Peak(w time.Duration) (n int, at time.Time) {
	ts := r.Reconnects
	for i, j := 0, 0; j < len(ts); j++ {
		for ts[j].Sub(ts[i]) >= w {
			i++
		}
		if j-i+1 > n {
			n, at = j-i+1, ts[i]
		}
	}
	return n, at
}
