//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// OldbinSuffix is appended to the pid file's name by a master whose upgrade is in flight,
// as nginx does: baton.pid.oldbin names the old master, baton.pid the new one.
const OldbinSuffix = ".oldbin"

// WritePIDFile writes pid to path atomically: a temporary file in the same directory,
// created exclusively (so never through a symlink), then renamed over path. A symlink at
// path is replaced, not followed. It does not fsync: a pid file describes this boot only
// (it lives in /run), and the rename alone makes readers see the old or the new content.
func WritePIDFile(path string, pid int) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = fmt.Fprintf(f, "%d\n", pid)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

// ReadPIDFile returns the pid a pid file names. It refuses to follow a symlink.
func ReadPIDFile(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: not a pid: %q", path, b)
	}
	return pid, nil
}

// namesUs reports whether the pid file at path is a regular file naming pid.
func namesUs(path string, pid int) bool {
	got, err := ReadPIDFile(path)
	return err == nil && got == pid
}

// RemovePIDFile removes path only if it still names pid. Removing a missing file is not
// an error.
func RemovePIDFile(path string, pid int) error {
	if !namesUs(path, pid) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

// RenameToOldbin moves the pid file aside at the start of an upgrade (path becomes
// path.oldbin), if it names pid. A pid file that names another process is left alone and
// reported.
func RenameToOldbin(path string, pid int) error {
	if !namesUs(path, pid) {
		return fmt.Errorf("pid file %s does not name this master (%d); not renamed", path, pid)
	}
	if err := os.Rename(path, path+OldbinSuffix); err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

// RestoreFromOldbin makes path name pid again after a rolled-back upgrade and removes
// path.oldbin if it names pid.
func RestoreFromOldbin(path string, pid int) error {
	if err := WritePIDFile(path, pid); err != nil {
		return err
	}
	return RemovePIDFile(path+OldbinSuffix, pid)
}
