package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
			if got := run(tc.args, &out, &errOut); got != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr %s", got, tc.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}
