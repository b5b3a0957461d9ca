package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/baton-supervisor/baton/bench/load"
)

func TestRun(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer failing.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"all succeed", []string{"-addr", addr(ok), "-clients", "2", "-requests", "20"}, 0, "20 (20 ok, 0 failed)"},
		{"new-conn", []string{"-addr", addr(ok), "-clients", "2", "-requests", "20", "-mode", "new-conn"}, 0, "20 connections"},
		{"failures exit 1", []string{"-addr", addr(failing), "-clients", "1", "-requests", "5"}, 1, "non-2xx=5"},
		{"bad mode", []string{"-mode", "pipelined"}, 2, ""},
		{"not loopback", []string{"-addr", "192.0.2.1:80"}, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(tc.args, strings.NewReader(""), &out, &errOut); got != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr %s", got, tc.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}

func TestRunJSONUntilEOF(t *testing.T) {
	var count atomic.Int64
	served := make(chan struct{})
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if count.Add(1) == 40 {
			close(served)
		}
		io.WriteString(w, "ok\n")
	}))
	defer ok.Close()
	addr := strings.TrimPrefix(ok.URL, "http://")
	tests := []struct {
		name      string
		args      []string
		stdin     func() io.Reader
		wantLimit string
		wantWarm  bool
	}{
		{"ends at EOF, long before its duration", []string{"-duration", "1h", "-until-eof", "-warm", "10"}, func() io.Reader { return servedThenEOF{served} }, "stopped", true},
		{"stdin ignored without -until-eof", []string{"-requests", "30"}, func() io.Reader { return strings.NewReader("") }, "requests", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"-addr", addr, "-clients", "2", "-json"}, tc.args...)
			if got := run(args, tc.stdin(), &out, &errOut); got != 0 {
				t.Fatalf("exit %d, want 0; stderr %s", got, errOut.String())
			}
			var r load.Result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("stdout is not a JSON result: %v\n%s", err, out.String())
			}
			if r.Limit != tc.wantLimit || r.OK == 0 || r.OK != r.Requests || r.Latency.Count() != uint64(r.OK) {
				t.Errorf("limit %q, %d ok of %d, %d latencies; want limit %q, all ok", r.Limit, r.OK, r.Requests, r.Latency.Count(), tc.wantLimit)
			}
			if got := strings.Contains(errOut.String(), "load: warm"); got != tc.wantWarm {
				t.Errorf("warm line printed: %t, want %t; stderr %q", got, tc.wantWarm, errOut.String())
			}
		})
	}
}

// servedThenEOF is a standard input that reads as end of file once the server has
// answered n requests (each client waits for its answer before its next request, so by
// then at least n - clients requests have finished).
type servedThenEOF struct{ served <-chan struct{} }

func (r servedThenEOF) Read([]byte) (int, error) {
	<-r.served
	return 0, io.EOF
}
