//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestResponses(t *testing.T) {
	envs := []struct {
		name     string
		env      []string
		wantTail string // after "pid=<pid> "
	}{
		{"under baton", []string{"BATON_GENERATION=7", "BATON_WORKER=3"}, "generation=7 worker=3\n"},
		{"bare", nil, "generation=0 worker=\n"},
	}
	requests := []struct {
		method, path string
		identity     bool // else "ok\n"
	}{
		{"GET", "/", true},
		{"POST", "/", true},
		{"GET", "/some/path?q=1", true},
		{"HEAD", "/healthz", false},
		{"GET", "/healthz", false},
	}
	for _, e := range envs {
		t.Run(e.name, func(t *testing.T) {
			ln, f := listenTCP(t)
			p := start(t, spec{files: []passed{{"http", f}}, env: e.env})
			p.expectNotify(t, "READY=1")
			c := mustDial(t, ln.Addr().String())
			for _, r := range requests {
				t.Run(r.method+" "+r.path, func(t *testing.T) {
					resp, body, err := c.do(r.method, r.path)
					if err != nil {
						t.Fatal(err)
					}
					want := "ok\n"
					if r.identity {
						want = fmt.Sprintf("pid=%d %s", p.pid(), e.wantTail)
					}
					if r.method == "HEAD" {
						want = ""
					}
					if resp.StatusCode != 200 || body != want {
						t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
					}
					if got, want := resp.Header.Get("Content-Type"), "text/plain; charset=utf-8"; got != want {
						t.Errorf("Content-Type: got %q, want %q", got, want)
					}
					if resp.Close {
						t.Errorf("got Connection: close before any drain")
					}
				})
			}
			c.Close()
			p.signal(t, syscall.SIGTERM)
			if got := p.wait(t); got != 0 {
				t.Errorf("exit status: got %d, want 0", got)
			}
		})
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name       string
		notifyAddr string // as in spec
	}{
		{"path", ""},
		{"abstract", fmt.Sprintf("@baton-hello-test-%d", os.Getpid())},
		{"unset", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, f := listenTCP(t)
			p := start(t, spec{files: []passed{{"http", f}}, notifyAddr: tt.notifyAddr})
			if p.notify != nil {
				p.expectNotify(t, "READY=1")
			}
			// Serves either way (without NOTIFY_SOCKET, this request is
			// queued until hello accepts).
			c := mustDial(t, ln.Addr().String())
			c.mustGet(t, "/healthz")
			c.Close()
			p.signal(t, syscall.SIGTERM)
			if p.notify != nil {
				p.expectNotify(t, "STOPPING=1")
			}
			if got := p.wait(t); got != 0 {
				t.Errorf("exit status: got %d, want 0", got)
			}
			if p.notify != nil {
				p.expectNoNotify(t)
			}
		})
	}
}

// pending sees a request the server has not read yet, and only then.
func TestPending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if pending(server) {
		t.Fatal("pending before the client wrote anything")
	}
	if _, err := client.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for !pending(server) {
		if time.Now().After(deadline) {
			t.Fatal("the client's bytes never seen as pending")
		}
		time.Sleep(time.Millisecond) // polling the kernel's queue
	}
	io.ReadFull(server, make([]byte, 16))
	if pending(server) {
		t.Error("pending after the server read everything")
	}
}
