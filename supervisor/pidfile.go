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

// ErrNotThisMaster is wrapped by the errors of a pid file operation refused because the
// file names another process.
var ErrNotThisMaster = errors.New("the pid file names another process")

// pidFileError says why a pid file was left alone; it unwraps to the cause
// (os.ErrNotExist, ErrNotThisMaster, or the error reading the file).
type pidFileError struct {
	msg string
	err error
}

func (e *pidFileError) Error() string { return e.msg }
func (e *pidFileError) Unwrap() error { return e.err }

// checkOurs returns nil if the pid file at path is a regular file naming pid, and else
// an error that says what it is instead ("pid file X is missing", "names pid N, not this
// master (M)") followed by "; " and then, to be said by the caller, what was not done.
func checkOurs(path string, pid int, notDone string) error {
	got, err := ReadPIDFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &pidFileError{fmt.Sprintf("pid file %s is missing; %s", path, notDone), err}
	case errors.Is(err, syscall.ELOOP):
		return &pidFileError{fmt.Sprintf("pid file %s is a symbolic link, never followed; %s", path, notDone), err}
	case err != nil:
		return &pidFileError{fmt.Sprintf("%v; %s", err, notDone), err}
	case got != pid:
		return &pidFileError{fmt.Sprintf("pid file %s names pid %d, not this master (%d); %s", path, got, pid, notDone), ErrNotThisMaster}
	}
	return nil
}

// namesUs reports whether the pid file at path is a regular file naming pid.
func namesUs(path string, pid int) bool {
	return checkOurs(path, pid, "") == nil
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
// path.oldbin), if it names pid. A pid file that is missing, or names another process, is
// left alone and reported: the error unwraps to os.ErrNotExist or ErrNotThisMaster.
func RenameToOldbin(path string, pid int) error {
	if err := checkOurs(path, pid, "not renamed"); err != nil {
		return err
	}
	if err := os.Rename(path, path+OldbinSuffix); err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

// RestoreFromOldbin makes path name pid again after a rolled-back upgrade, as nginx does:
// by renaming path.oldbin back to path, which needs no free space, so that it also works
// on a full file system. The rename is done when path.oldbin is a regular file naming pid
// and path is free: missing, naming pid, naming a process that no longer runs (the new
// master that just exited, which may not have removed its own), or not a pid file at
// all. A path naming a process that runs is another master's: both files are left alone
// and the error unwraps to ErrNotThisMaster. Only if path.oldbin does not name pid (it was
// removed or replaced) and path does not either is path written anew, as WritePIDFile
// does; that needs space.
func RestoreFromOldbin(path string, pid int) error {
	oldbin := path + OldbinSuffix
	current, readErr := ReadPIDFile(path)
	ours := readErr == nil && current == pid
	if readErr == nil && !ours && processRuns(current) {
		return &pidFileError{fmt.Sprintf("pid file %s names pid %d, which runs; not restored", path, current), ErrNotThisMaster}
	}
	notRenamed := checkOurs(oldbin, pid, "cannot rename it back")
	if notRenamed == nil {
		// rename(2) replaces path, a symlink included, without following it.
		if notRenamed = os.Rename(oldbin, path); notRenamed == nil {
			return nil
		}
	}
	if !ours {
		if err := WritePIDFile(path, pid); err != nil {
			return fmt.Errorf("%w (and %v)", err, notRenamed)
		}
	}
	return RemovePIDFile(oldbin, pid)
}

// processRuns reports whether a process pid exists and has not exited: a zombie, exited but
// not yet reaped by its parent, does not run.
func processRuns(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err == nil {
		// pid (comm) state ...: comm may hold spaces and parentheses; the last ')' ends it.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
	}
	err = syscall.Kill(pid, 0) // no /proc: ask the kernel
	return err == nil || err == syscall.EPERM
}
