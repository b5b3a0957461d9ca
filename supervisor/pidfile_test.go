//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWritePIDFileNeverFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "baton.pid")
	if err := os.Symlink(victim, pidfile); err != nil {
		t.Fatal(err)
	}
	if err := WritePIDFile(pidfile, 1234); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("write went through the symlink: victim now %q", b)
	}
	fi, err := os.Lstat(pidfile)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("pid file is not a regular file: %v %v", fi, err)
	}
	if got, err := ReadPIDFile(pidfile); err != nil || got != 1234 {
		t.Errorf("ReadPIDFile = %d, %v; want 1234", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary file left behind: %v", ents)
	}
}

func TestReadPIDFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.WriteFile(real, []byte("42\n"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(real, link)
	if _, err := ReadPIDFile(link); err == nil {
		t.Error("ReadPIDFile followed a symlink")
	}
}

func TestRemovePIDFileOnlyIfOurs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		pid     int
		gone    bool
	}{
		{"ours", "100\n", 100, true},
		{"someone else's", "101\n", 100, false},
		{"garbage", "x\n", 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "baton.pid")
			os.WriteFile(p, []byte(tc.content), 0o644)
			if err := RemovePIDFile(p, tc.pid); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(p)
			if gone := os.IsNotExist(err); gone != tc.gone {
				t.Errorf("removed = %v, want %v", gone, tc.gone)
			}
		})
	}
	if err := RemovePIDFile(filepath.Join(t.TempDir(), "none"), 1); err != nil {
		t.Errorf("removing a missing pid file: %v", err)
	}
}

// neverPID is a pid no process has: above the largest pid_max Linux allows (2^22). (A
// small pid such as 9 is a kernel thread on some machines.)
const neverPID = 1<<22 + 1

func TestOldbinRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "baton.pid")
	if err := WritePIDFile(p, 7); err != nil {
		t.Fatal(err)
	}
	if err := RenameToOldbin(p, 8); err == nil {
		t.Fatal("renamed a pid file that names another master")
	}
	if err := RenameToOldbin(p, 7); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadPIDFile(p + OldbinSuffix); got != 7 {
		t.Fatalf("oldbin names %d, want 7", got)
	}
	WritePIDFile(p, neverPID) // the new master, gone
	if err := RestoreFromOldbin(p, 7); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadPIDFile(p); got != 7 {
		t.Errorf("restored pid file names %d, want 7", got)
	}
	if _, err := os.Stat(p + OldbinSuffix); !os.IsNotExist(err) {
		t.Errorf("oldbin still there: %v", err)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestRenameToOldbinRefusals(t *testing.T) {
	const us = 7
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string // the message, %s being path
		is      error
	}{
		{"missing", func(*testing.T, string) {}, "pid file %s is missing; not renamed", os.ErrNotExist},
		{"another master's", func(t *testing.T, p string) { WritePIDFile(p, 8) }, "pid file %s names pid 8, not this master (7); not renamed", ErrNotThisMaster},
		{"a symlink", func(t *testing.T, p string) {
			target := filepath.Join(filepath.Dir(p), "target")
			os.WriteFile(target, []byte("7\n"), 0o644)
			os.Symlink(target, p)
		}, "pid file %s is a symbolic link, never followed; not renamed", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "baton.pid")
			tc.prepare(t, p)
			err := RenameToOldbin(p, us)
			if err == nil {
				t.Fatal("renamed")
			}
			if want := fmt.Sprintf(tc.want, p); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if _, err := os.Lstat(p + OldbinSuffix); !os.IsNotExist(err) {
				t.Errorf("%s appeared", p+OldbinSuffix)
			}
		})
	}
}

// TestRestoreFromOldbin: what a rolled-back upgrade finds, and what it leaves.
func TestRestoreFromOldbin(t *testing.T) {
	us, dead, other := os.Getpid(), deadPID(t), os.Getppid()
	const missing = -1
	type files struct{ path, oldbin int } // the pid each names; missing; 0: garbage
	for _, tc := range []struct {
		name    string
		before  files
		after   files
		wantErr error
	}{
		{"new master removed its own", files{missing, us}, files{us, missing}, nil},
		{"new master left its own", files{dead, us}, files{us, missing}, nil},
		{"garbage at path", files{0, us}, files{us, missing}, nil},
		{"already restored", files{us, us}, files{us, missing}, nil},
		{"path names us, oldbin gone", files{us, missing}, files{us, missing}, nil},
		{"oldbin gone: written", files{missing, missing}, files{us, missing}, nil},
		{"oldbin another's: written, oldbin left", files{missing, dead}, files{us, dead}, nil},
		{"another master runs: both left", files{other, us}, files{other, us}, ErrNotThisMaster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "baton.pid")
			put := func(name string, pid int) {
				switch pid {
				case missing:
				case 0:
					os.WriteFile(name, []byte("garbage\n"), 0o644)
				default:
					if err := WritePIDFile(name, pid); err != nil {
						t.Fatal(err)
					}
				}
			}
			put(p, tc.before.path)
			put(p+OldbinSuffix, tc.before.oldbin)
			err := RestoreFromOldbin(p, us)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("RestoreFromOldbin = %v, want %v", err, tc.wantErr)
			}
			for _, f := range []struct {
				name string
				want int
			}{{p, tc.after.path}, {p + OldbinSuffix, tc.after.oldbin}} {
				got, err := ReadPIDFile(f.name)
				if f.want == missing {
					if !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s: %d, %v; want it gone", filepath.Base(f.name), got, err)
					}
				} else if got != f.want {
					t.Errorf("%s names %d (%v), want %d", filepath.Base(f.name), got, err, f.want)
				}
			}
		})
	}
}

// TestRestoreFromOldbinNeverThroughSymlinks: a symlink at path is replaced, one at
// path.oldbin is not renamed into place; neither target changes.
func TestRestoreFromOldbinNeverThroughSymlinks(t *testing.T) {
	us := os.Getpid()
	for _, at := range []string{"", OldbinSuffix} {
		t.Run("symlink at path"+at, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "baton.pid")
			victim := filepath.Join(dir, "victim")
			os.WriteFile(victim, []byte(strconv.Itoa(us)+"\n"), 0o644)
			if at == "" {
				WritePIDFile(p+OldbinSuffix, us)
			}
			os.Symlink(victim, p+at)
			if err := RestoreFromOldbin(p, us); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("%s is not a regular file: %v, %v", p, fi, err)
			}
			if got, err := ReadPIDFile(p); got != us {
				t.Errorf("pid file names %d, %v", got, err)
			}
			if b, _ := os.ReadFile(victim); string(b) != strconv.Itoa(us)+"\n" {
				t.Errorf("the symlink's target changed: %q", b)
			}
		})
	}
}

// TestRestoreOnFullFileSystem: issue 8. After a failed upgrade on a full file system, the
// pid file names the old master again: writing a new one is impossible there, renaming
// .oldbin back is not.
func TestRestoreOnFullFileSystem(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k,mode=0755"); err != nil {
		t.Skipf("mount tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	us, newMaster := os.Getpid(), deadPID(t)
	p := filepath.Join(dir, "baton.pid")
	if err := WritePIDFile(p, us); err != nil {
		t.Fatal(err)
	}
	if err := RenameToOldbin(p, us); err != nil { // USR2
		t.Fatal(err)
	}
	if err := WritePIDFile(p, newMaster); err != nil { // the new master starts
		t.Fatal(err)
	}

	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err = fill.Write(chunk); err != nil {
			break
		}
	}
	fill.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the file system: %v, want ENOSPC", err)
	}
	if err := WritePIDFile(filepath.Join(dir, "probe.pid"), us); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a pid file written on the full file system: %v, want ENOSPC", err)
	}

	// The new master dies without removing its pid file; the old one rolls back.
	if err := RestoreFromOldbin(p, us); err != nil {
		t.Fatalf("restore on a full file system: %v", err)
	}
	if got, err := ReadPIDFile(p); got != us {
		t.Errorf("pid file names %d (%v), want the old master %d", got, err, us)
	}
	if _, err := os.Lstat(p + OldbinSuffix); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", p+OldbinSuffix, err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
