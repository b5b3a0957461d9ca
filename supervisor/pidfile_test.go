//go:build linux

package supervisor

import (
	"os"
	"path/filepath"
	"testing"
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
	WritePIDFile(p, 9) // the new master
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
