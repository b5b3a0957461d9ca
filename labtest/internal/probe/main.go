// Probe is the HTTP client the lab tests run inside the systemd-lab container (whose
// network namespace has only its own loopback, so a client on the host cannot reach the
// units under test). It sends GET requests and prints what answered.
//
// Output, on stdout, one line each:
//
//	connected <local address>     when -announce is set, as soon as a connection is made
//	body <response body>          the first time each distinct body is seen
//	<each line of the body>       with -raw instead: every body, verbatim (a metrics scrape)
//	{"ok":N,"failed":N,...}       the summary (JSON, see result), last
//
// Exit status: 0 when the summary was printed (whatever it says), 2 on bad usage.
//
// Usage:
//
//	probe [-unix PATH] [-n N | -until FILE] [-c N] [-timeout D] [-keepalive] [-announce] [-raw] URL
//
// With -until, every client sends requests one after the other until FILE exists; with
// -n, N requests are sent in all. Without -keepalive every request uses a connection of
// its own, so each one tests that the listening socket takes a new connection. With -raw,
// the body of every 200 response is printed as it came (space around it trimmed), its
// lines as output lines, rather than as one "body" line for each distinct body: `probe
// -raw URL` is a scrape of a Prometheus endpoint, its exposition text then the summary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is the summary line.
type result struct {
	OK     int            `json:"ok"`     // 200 responses read in full
	Failed int            `json:"failed"` // everything else
	Errors map[string]int `json:"errors"` // failure reason → count
	Bodies map[string]int `json:"bodies"` // response body → count
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	unixPath := fs.String("unix", "", "connect to this unix socket `path` instead of the URL's host")
	n := fs.Int("n", 1, "requests to send in all (ignored with -until)")
	until := fs.String("until", "", "keep sending until this `file` exists")
	clients := fs.Int("c", 1, "concurrent clients")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	keepalive := fs.Bool("keepalive", false, "reuse connections")
	announce := fs.Bool("announce", false, `print "connected ADDR" when a connection is made`)
	raw := fs.Bool("raw", false, `print every body verbatim, as lines, not "body" lines`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *clients < 1 || *n < 1 {
		fmt.Fprintln(stderr, "usage: probe [flags] URL")
		return 2
	}
	url := fs.Arg(0)

	var out sync.Mutex
	println := func(s string) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintln(stdout, s)
	}
	dialer := &net.Dialer{Timeout: *timeout}
	tr := &http.Transport{DisableKeepAlives: !*keepalive, MaxIdleConnsPerHost: *clients}
	if *unixPath != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", *unixPath)
		}
	} else {
		tr.DialContext = dialer.DialContext
	}
	client := &http.Client{Transport: tr, Timeout: *timeout}
	trace := &httptrace.ClientTrace{}
	if *announce {
		trace.GotConn = func(info httptrace.GotConnInfo) {
			println("connected " + info.Conn.LocalAddr().String())
		}
	}

	res := result{Errors: map[string]int{}, Bodies: map[string]int{}}
	var mu sync.Mutex
	var sent atomic.Int64
	record := func(body string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.Failed++
			res.Errors[err.Error()]++
			return
		}
		res.OK++
		if *raw {
			println(body)
		} else if res.Bodies[body] == 0 {
			println("body " + body)
		}
		res.Bodies[body]++
	}
	more := func() bool {
		if *until != "" {
			_, err := os.Stat(*until)
			return errors.Is(err, os.ErrNotExist)
		}
		return sent.Add(1) <= int64(*n)
	}
	var wg sync.WaitGroup
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for more() {
				record(get(client, trace, url))
			}
		}()
	}
	wg.Wait()
	b, _ := json.Marshal(res)
	println(string(b))
	return 0
}

// get sends one request and returns the body with surrounding space trimmed.
func get(client *http.Client, trace *httptrace.ClientTrace, url string) (string, error) {
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", errors.Unwrap(err) // drop the `Get "URL":` prefix; keep the cause
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}
