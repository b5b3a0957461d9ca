//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// The control sockets the CLI tries, in order: the file's path as it is now, then the
// runtime directory's, on which a master under systemd always listens too.
func TestControlPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "web.toml")
	rt := filepath.Join(dir, "run")
	for _, tc := range []struct {
		body, runtime string
		want          []string
	}{
		{`control_socket = "b.sock"` + "\n", rt, []string{filepath.Join(dir, "b.sock"), filepath.Join(rt, "control.sock")}},
		{`control_socket = "/x/b.sock"` + "\n[worker]\ncount = \"bad\"\n", "", []string{"/x/b.sock"}},
		{"[worker]\ncount = 2\n", rt, []string{filepath.Join(rt, "control.sock")}},
		{`control_socket = "` + filepath.Join(rt, "control.sock") + `"` + "\n", rt, []string{filepath.Join(rt, "control.sock")}},
		{`control_socket = "@ctl"` + "\n", rt, []string{"@ctl", filepath.Join(rt, "control.sock")}},
	} {
		if err := os.WriteFile(file, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("RUNTIME_DIRECTORY", tc.runtime)
		got, err := controlPaths(file)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q, RUNTIME_DIRECTORY=%q: %q %v, want %q", tc.body, tc.runtime, got, err, tc.want)
		}
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	os.WriteFile(file, []byte("[worker]\ncount = 2\n"), 0o644)
	if got, err := controlPaths(file); err == nil {
		t.Errorf("no control socket anywhere: %q, want an error", got)
	}
}

// fakeMaster accepts one client on a unix socket in a temporary directory, answers its
// request with lines, and then closes the connection, or, with hold, keeps it open until
// the client goes away. It hands the request it read to the test.
func fakeMaster(t *testing.T, lines []string, hold bool) (string, <-chan supervisor.ControlRequest) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reqs := make(chan supervisor.ControlRequest, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		line, err := r.ReadBytes('\n')
		var req supervisor.ControlRequest
		if err == nil && json.Unmarshal(line, &req) == nil {
			reqs <- req
		}
		close(reqs)
		for _, l := range lines {
			if _, err := io.WriteString(c, l+"\n"); err != nil {
				return
			}
		}
		if hold {
			io.Copy(io.Discard, r) // until the client closes
		}
	}()
	return path, reqs
}

// The exit status of the control verbs, against a master that answers as scripted: 0
// done, 1 refused or failed, 2 usage, 3 no master, 4 still in flight.
func TestControlExitCodes(t *testing.T) {
	t.Setenv("MAINPID", "")
	soon := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	pending := func(deadline string) string {
		return `{"ok":true,"pending":true,"message":"upgrade started: new master pid 42","deadline":"` + deadline + `"}`
	}
	for _, tc := range []struct {
		name     string
		args     []string
		lines    []string // nil: no master on the socket
		hold     bool
		want     int
		progress bool   // the request asked for progress lines
		out, err string // in stdout, in stderr
	}{
		{name: "status", args: []string{"status", "--json"}, lines: []string{`{"ok":true,"status":{}}`}, want: 0},
		{name: "upgrade done", args: []string{"upgrade", "--wait"}, progress: true,
			lines: []string{pending(soon(time.Minute)), `{"ok":true,"message":"upgrade committed: new master pid 42 is in charge"}`},
			want:  0, out: "upgrade started: new master pid 42"},
		{name: "upgrade rolled back", args: []string{"upgrade", "--wait"}, progress: true,
			lines: []string{pending(soon(time.Minute)), `{"ok":false,"error":"upgrade rolled back: new master 42 exit 1: web.toml:8: worker.count: bad"}`},
			want:  1, err: "web.toml:8"},
		{name: "upgrade refused", args: []string{"upgrade", "--wait"}, progress: true,
			lines: []string{`{"ok":false,"error":"upgrade refused: an upgrade is already in flight"}`}, want: 1, err: "refused"},
		{name: "manual commit", args: []string{"upgrade", "--wait"}, progress: true,
			lines: []string{pending(soon(time.Minute)), `{"ok":true,"in_flight":true,"message":"new master 42 ready; it waits for you: ` + "`baton commit`" + ` commits"}`},
			want:  4, out: "it waits for you"},
		{name: "timeout given", args: []string{"upgrade", "--wait", "--timeout", "300ms"}, progress: true,
			lines: []string{pending(soon(time.Hour))}, hold: true, want: 4, err: "upgrade still in flight after"},
		// No --timeout: the client waits until the master's deadline, plus its margin.
		{name: "master's deadline", args: []string{"upgrade", "--wait"}, progress: true,
			lines: []string{pending(soon(-deadlineMargin + 2*time.Second))}, hold: true, want: 4, err: "upgrade still in flight after"},
		// A master that does not know progress lines answers one line at the end.
		{name: "old master", args: []string{"reload", "--wait"}, progress: true,
			lines: []string{`{"ok":true,"message":"reload complete"}`}, want: 0, out: "reload complete"},
		{name: "old master, timeout", args: []string{"upgrade", "--wait", "--timeout", "300ms"}, progress: true,
			lines: []string{}, hold: true, want: 4, err: "may still be in flight"},
		{name: "commit", args: []string{"commit"}, lines: []string{`{"ok":true,"message":"commit started"}`}, want: 0},
		{name: "commit refused", args: []string{"commit", "--wait"}, progress: true,
			lines: []string{`{"ok":false,"error":"commit refused: no upgrade in flight on this master"}`}, want: 1, err: "no upgrade in flight"},
		{name: "no reply", args: []string{"status", "--timeout", "300ms"}, lines: []string{}, hold: true, want: 3, err: "no reply within"},
		{name: "closed without a result", args: []string{"upgrade", "--wait"}, progress: true,
			lines: []string{pending(soon(time.Minute))}, want: 1, err: "no result"},
		{name: "no master", args: []string{"upgrade", "--wait"}, want: 3, err: "no master answers"},
		{name: "stop, no master", args: []string{"stop", "--wait"}, want: 0, out: "no master runs"},
		{name: "bad flag", args: []string{"upgrade", "--wiat"}, lines: []string{}, want: 2},
		{name: "argument", args: []string{"upgrade", "now"}, lines: []string{}, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "none.sock")
			var reqs <-chan supervisor.ControlRequest
			if tc.lines != nil {
				path, reqs = fakeMaster(t, tc.lines, tc.hold)
			}
			var stdout, stderr strings.Builder
			got := dispatch(append(tc.args, "--socket", path), &stdout, &stderr)
			if got != tc.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tc.want, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stdout %q, stderr %q; want %q, %q in them", stdout.String(), stderr.String(), tc.out, tc.err)
			}
			if reqs == nil || tc.want == 2 {
				return
			}
			if req := <-reqs; req.Verb != tc.args[0] || req.Progress != tc.progress || req.Wait != tc.progress {
				t.Errorf("request %+v", req)
			}
		})
	}
}

// A stale socket file (its master gone) is no master: 3.
func TestControlStaleSocket(t *testing.T) {
	t.Setenv("MAINPID", "")
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	var stdout, stderr strings.Builder
	if got := dispatch([]string{"reload", "--wait", "--socket", path}, &stdout, &stderr); got != exitNoMaster {
		t.Fatalf("exit %d, want %d: %s", got, exitNoMaster, stderr.String())
	}
}
