//go:build linux

package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
