package load

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"time"
)

// run makes requests until the run ends.
func (c *client) run() {
	defer c.l.wg.Done()
	defer c.drop()
	c.br = bufio.NewReaderSize(nil, 4096)
	for c.l.ctx.Err() == nil {
		if c.l.issued.Add(1) > c.l.opts.Requests {
			c.l.limit.CompareAndSwap(nil, "requests")
			c.l.cancel()
			return
		}
		c.request()
		c.l.finished.Add(1)
	}
}

// request makes one request and records its outcome. It never retries.
func (c *client) request() {
	o := &c.l.opts
	start := time.Now()
	if c.conn == nil {
		// Not DialContext: a request started is seen through, whenever
		// the run ends; the dialer's timeout bounds it.
		conn, err := c.l.dialer.Dial("tcp", o.Addr)
		if err != nil {
			c.fail(Classify(err), false, err.Error())
			return
		}
		c.conns++
		c.conn, c.served = conn, 0
		c.br.Reset(conn)
	}
	reused := c.served > 0
	c.conn.SetDeadline(start.Add(o.Timeout))
	if _, err := c.conn.Write(c.l.req); err != nil {
		c.fail(Classify(err), reused, "write: "+err.Error())
		c.drop()
		return
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.fail(Classify(err), reused, "read response: "+err.Error())
		c.drop()
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.fail(Classify(err), reused, "read body: "+err.Error())
		c.drop()
		return
	}
	latency := time.Since(start)
	c.served++
	if resp.StatusCode/100 == 2 {
		c.ok++
		c.hist.Record(latency)
	} else {
		c.fail(Non2xx, reused, fmt.Sprintf("status %s", resp.Status))
	}
	switch {
	case o.Mode == NewConn:
		c.awaitClose()
	case resp.Close:
		c.drop()
	}
}

// awaitClose waits (within the request timeout) for the server to close the
// connection it was asked to close, then closes it too. The server closing
// first keeps the client's ports out of TIME_WAIT.
func (c *client) awaitClose() {
	c.conn.SetReadDeadline(time.Now().Add(c.l.opts.Timeout))
	io.Copy(io.Discard, c.br)
	c.drop()
}

func (c *client) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) fail(k Kind, reused bool, msg string) {
	c.failed[k]++
	if reused {
		c.reused++
	}
	if len(c.samples) < MaxSamples/c.l.opts.Clients+1 {
		c.samples = append(c.samples, Failure{At: time.Now(), Kind: k, Reused: reused, Err: msg})
	}
}
