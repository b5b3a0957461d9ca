//go:build linux

package spawn

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// replacedHelper renames another file over this binary, as an upgrade installs a new one,
// then starts a program: the fallback's trampoline is /proc/self/exe, the binary this
// process runs, not whatever the path names now.
func replacedHelper() int {
	self, err := os.Executable()
	if err != nil {
		return 2
	}
	next := self + ".next"
	if err := os.WriteFile(next, []byte("#!/bin/sh\necho replaced binary ran\nexit 3\n"), 0o755); err != nil {
		return 2
	}
	if err := os.Rename(next, self); err != nil {
		return 2
	}
	a := sh(`echo "$$ $LISTEN_PID"`)
	a.ListenPID = true
	a.Files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	p, _, err := Start(a)
	if err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		return 1
	}
	st, err := p.Wait()
	if err != nil || !st.Success() {
		return 1
	}
	return 0
}

func TestStartAfterBinaryReplaced(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "spawn.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(copied, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(copied)
	cmd.Env = append(os.Environ(), "SPAWN_TEST_HELPER=replaced", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("pid, LISTEN_PID = %q, want the same number twice", out)
	}
}
