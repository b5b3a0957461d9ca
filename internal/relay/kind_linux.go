//go:build linux

package relay

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// needed reports whether a child's stream that would be f should go through a relay: f is
// a pipe or a socket, and not the journal stream $JOURNAL_STREAM names.
func needed(f *os.File) bool {
	st, ok := stat(f)
	if !ok {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK:
	default:
		return false
	}
	return !isJournalStream(st, os.Getenv("JOURNAL_STREAM"))
}

// isJournal reports whether f is the journal stream $JOURNAL_STREAM names.
func isJournal(f *os.File) bool {
	st, ok := stat(f)
	return ok && st.Mode&unix.S_IFMT == unix.S_IFSOCK && isJournalStream(st, os.Getenv("JOURNAL_STREAM"))
}

func stat(f *os.File) (*unix.Stat_t, bool) {
	var st unix.Stat_t
	if f == nil || control(f, func(fd int) error { return unix.Fstat(fd, &st) }) != nil {
		return nil, false
	}
	return &st, true
}

// isJournalStream reports whether stream, a value of $JOURNAL_STREAM, "<device>:<inode>"
// in decimal, names the file st describes (systemd.exec(5)); logging.New makes the same
// test for its own choice.
func isJournalStream(st *unix.Stat_t, stream string) bool {
	devText, inoText, ok := strings.Cut(stream, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devText, 10, 64)
	ino, err2 := strconv.ParseUint(inoText, 10, 64)
	return err1 == nil && err2 == nil && uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// control runs fn on f's descriptor without f.Fd's side effect of making it blocking.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
