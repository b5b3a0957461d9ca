//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// listenTCP returns a loopback listener and a duplicate of its fd to pass.
func listenTCP(t *testing.T) (*net.TCPListener, *os.File) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); f.Close() })
	return ln, f
}

// conn is a raw HTTP/1.1 client connection: no pooling, no retries, so
// every failure is seen.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, r: bufio.NewReader(c)}, nil
}

func mustDial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends one request and reads the whole response.
func (c *conn) do(method, path string) (*http.Response, string, error) {
	c.SetDeadline(time.Now().Add(waitLimit))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: hello\r\nContent-Length: 0\r\n\r\n", method, path); err != nil {
		return nil, "", fmt.Errorf("%s %s: write: %w", method, path, err)
	}
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method}) // HEAD: no body
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp, string(body), nil
}

// mustGet does one request and fails unless it answers 200.
func (c *conn) mustGet(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, body, err := c.do("GET", path)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return resp, body
}

// expectEOF waits until the server closes c, and fails if it sends
// anything instead.
func (c *conn) expectEOF(t *testing.T) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLimit))
	defer c.SetReadDeadline(time.Time{})
	if b, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want the server to close the connection (EOF), got byte %q, err %v", b, err)
	}
}

// expectOpen fails if the server has already closed c. It does not wait:
// it says whether a close (FIN) has reached us yet.
func (c *conn) expectOpen(t *testing.T) {
	t.Helper()
	c.SetReadDeadline(time.Now())
	defer c.SetReadDeadline(time.Time{})
	if _, err := c.r.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want the connection still open and quiet, got %v", err)
	}
}

// expectEOFOrReset waits until c is closed by the other side, cleanly or not.
func (c *conn) expectEOFOrReset(t *testing.T) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLimit))
	_, err := c.r.ReadByte()
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("want the connection closed, got %v", err)
	}
}
