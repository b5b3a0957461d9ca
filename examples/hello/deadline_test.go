//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// BATON_STOP_TIMEOUT sets what the command line leaves unset, and the whole drain fits
// in it.
func TestFitStopTimeout(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		name                string
		env                 string
		set                 map[string]bool
		drain, spread, wait time.Duration
		err                 bool
	}{
		{name: "30s", env: "30", drain: s, spread: 17 * s, wait: 9 * s},
		{name: "default stop_timeout, decimal", env: "30.0", drain: s, spread: 17 * s, wait: 9 * s},
		{name: "2m: wait capped at its default", env: "120", drain: s, spread: 97 * s, wait: 10 * s},
		{name: "short", env: "2", drain: 200 * time.Millisecond, spread: 1000 * time.Millisecond, wait: 600 * time.Millisecond},
		{name: "flags win", env: "30", set: map[string]bool{"drain": true, "shutdown-timeout": true}, drain: 5 * s, spread: 12 * s, wait: 10 * s},
		{name: "close-spread flag wins", env: "30", set: map[string]bool{"close-spread": true}, drain: s, spread: 0, wait: 9 * s},
		{name: "flags leave nothing to spread", env: "5", set: map[string]bool{"drain": true, "shutdown-timeout": true}, drain: 5 * s, spread: 0, wait: 10 * s},
		{name: "not a number", env: "30s", err: true},
		{name: "empty", env: "", err: true},
		{name: "zero", env: "0", err: true},
		{name: "negative", env: "-1", err: true},
		{name: "NaN", env: "NaN", err: true},
		{name: "infinite", env: "Inf", err: true},
		{name: "huge", env: "1e300", err: true},
		{name: "too short", env: "0.000000001", err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The flags' own values, as parseFlags leaves them: defaults, or what was given.
			cfg := config{drain: s, shutdownTimeout: 10 * s, set: c.set}
			if c.set["drain"] {
				cfg.drain = 5 * s
			}
			err := cfg.fitStopTimeout(c.env)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if c.err {
				if cfg.drain != s || cfg.shutdownTimeout != 10*s || cfg.closeSpread != 0 {
					t.Errorf("a bad value changed the config: %+v", cfg)
				}
				return
			}
			if cfg.drain != c.drain || cfg.closeSpread != c.spread || cfg.shutdownTimeout != c.wait {
				t.Errorf("drain %s, close-spread %s, shutdown-timeout %s; want %s, %s, %s",
					cfg.drain, cfg.closeSpread, cfg.shutdownTimeout, c.drain, c.spread, c.wait)
			}
			if len(c.set) == 0 {
				var secs float64
				fmt.Sscan(c.env, &secs)
				if total := cfg.drain + cfg.closeSpread + cfg.shutdownTimeout; total > time.Duration(secs*float64(s)) {
					t.Errorf("the drain takes up to %s, more than the deadline %ss", total, c.env)
				}
			}
		})
	}
}

// TestDrainSpreadsIdleCloses: with a deadline from BATON_STOP_TIMEOUT (two hours, so
// that the second close is due long after the test), hello closes one of two idle
// keep-alive connections after the drain window and keeps serving the other: its next
// request is answered, with Connection: close, and hello exits, none left.
func TestDrainSpreadsIdleCloses(t *testing.T) {
	ln, f := listenTCP(t)
	p := start(t, spec{files: []passed{{"http", f}}, env: []string{"BATON_STOP_TIMEOUT=7200"}, args: []string{"-drain", "10ms"}})
	p.expectNotify(t, "READY=1")
	cs := []*conn{mustDial(t, ln.Addr().String()), mustDial(t, ln.Addr().String())}
	for _, c := range cs {
		c.mustGet(t, "/")
	}
	p.signal(t, syscall.SIGTERM)
	line := p.waitLog(t, "msg=draining")
	if got := logValue(line, "close_spread"); got != "1h47m49.99s" {
		t.Errorf("log %q: close_spread=%s, want 2h less a tenth, the drain and the wait", line, got)
	}
	// Whichever is closed first: the other is not, and is still served.
	first := make(chan int, len(cs))
	for i, c := range cs {
		go func() {
			c.SetReadDeadline(time.Now().Add(waitLimit))
			c.r.Peek(1) // EOF when hello closes it; the response to the probe below
			first <- i
		}()
	}
	closed := <-first
	other := cs[1-closed]
	if _, err := fmt.Fprintf(other, "GET / HTTP/1.1\r\nHost: hello\r\n\r\n"); err != nil {
		t.Fatalf("the connection kept open: write: %v", err)
	}
	<-first
	other.SetReadDeadline(time.Now().Add(waitLimit))
	resp, err := http.ReadResponse(bufio.NewReader(other.r), nil)
	if err != nil {
		t.Fatalf("the connection kept open was not served: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("response %d, close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	cs[closed].expectEOF(t)
	if got := p.wait(t); got != 0 {
		t.Errorf("exit status %d, want 0", got)
	}
	if l := p.waitLog(t, "idle connections closed one at a time"); logValue(l, "closed") != "1" {
		t.Errorf("log %q: want closed=1", l)
	}
}
