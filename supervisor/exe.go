//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Executable resolves, once at start, the path a new master will be started from on
// SIGUSR2: argv0 made absolute against the working directory at start, or looked up in
// PATH when it has no slash. Symlinks are kept as they are, so an upgrade that replaces the
// file, or re-points the link, at that path is picked up. It never returns /proc/self/exe,
// which is the running, old, inode.
func Executable(argv0 string) (string, error) {
	if argv0 == "" {
		return "", fmt.Errorf("executable: empty argv[0]")
	}
	p := argv0
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return fallbackExecutable(fmt.Errorf("executable: look up %q in PATH: %w", argv0, err))
		}
		p = lp
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("executable: %q: %w", argv0, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fallbackExecutable(fmt.Errorf("executable: %w", err))
	}
	return abs, nil
}

// fallbackExecutable is the path the kernel recorded at exec time, for when argv[0] says
// nothing usable (a login shell's "-baton", a renamed argv[0]).
func fallbackExecutable(cause error) (string, error) {
	p, err := os.Readlink("/proc/self/exe")
	if err != nil || strings.HasSuffix(p, " (deleted)") {
		return "", cause
	}
	return p, nil
}
