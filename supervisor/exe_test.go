//go:build linux

package supervisor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExecutable(t *testing.T) {
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	os.Mkdir(binDir, 0o755)
	real := filepath.Join(binDir, "baton")
	os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755)
	link := filepath.Join(dir, "baton-link")
	os.Symlink("bin/baton", link)
	t.Chdir(dir)
	t.Setenv("PATH", binDir)
	for _, tc := range []struct{ argv0, want string }{
		{"./bin/baton", real},
		{"bin/../bin/baton", real},
		{"baton", real},        // PATH lookup
		{"./baton-link", link}, // the link is kept, so a re-pointed link is followed
		{real, real},
	} {
		t.Run(tc.argv0, func(t *testing.T) {
			got, err := Executable(tc.argv0)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Executable(%q) = %q, want %q", tc.argv0, got, tc.want)
			}
		})
	}
}

func TestExecutableFallsBackToProcSelfExe(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	got, err := Executable("-not-a-command")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Executable()
	if got != want {
		t.Errorf("got %q, want the running binary %q", got, want)
	}
}
