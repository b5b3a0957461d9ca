//go:build linux

package logging

import (
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// options are New's settings; tests change them.
type options struct {
	socket      string                                       // journald's native socket
	replaceAttr func(groups []string, a slog.Attr) slog.Attr // for the Text and Prefixed handlers
}

var defaultOptions = options{socket: "/run/systemd/journal/socket"}

// New returns baton's logger, writing to stderr at level and above (nil
// means slog.LevelInfo), and the Mode it chose:
//
//   - Journal when $JOURNAL_STREAM ("<device>:<inode>") names stderr, the
//     rule of systemd.exec(5) and sd_journal_stream_fd(3), and journald's
//     native socket /run/systemd/journal/socket exists. New then opens one
//     close-on-exec datagram socket, owned by the logger for the life of the
//     process. A line journald does not take is written to stderr as
//     Prefixed would write it.
//   - Text when stderr is a terminal: slog.TextHandler lines.
//   - Prefixed otherwise (a pipe, a file, or a journal stream without the
//     native socket): NewPrefixedHandler lines.
//
// The logger is safe for concurrent use. New does not change the
// environment: children that inherit stderr can make the same choice.
// stderr must not be nil.
func New(stderr *os.File, level slog.Leveler) (*slog.Logger, Mode) {
	h, mode := newHandler(stderr, level, defaultOptions)
	return slog.New(h), mode
}

func newHandler(stderr *os.File, level slog.Leveler, o options) (slog.Handler, Mode) {
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: o.replaceAttr}
	out := newAsyncWriter(stderr) // never blocks the caller on a slow or stopped reader
	h, mode := handlerFor(stderr, out, level, hopts, o)
	report := slog.New(h)
	out.report = func(n int64) {
		report.Warn("log lines dropped: the log output did not take them in time", "count", n)
	}
	return h, mode
}

func handlerFor(stderr *os.File, out io.Writer, level slog.Leveler, hopts *slog.HandlerOptions, o options) (slog.Handler, Mode) {
	if isJournalStream(stderr, os.Getenv("JOURNAL_STREAM")) {
		prefixed := NewPrefixedHandler(out, hopts)
		sender, err := openSender(o.socket)
		if err != nil {
			return prefixed, Prefixed
		}
		return newJournalHandler(sender, level, prefixed), Journal
	}
	if isTerminal(stderr) {
		return slog.NewTextHandler(out, hopts), Text
	}
	return NewPrefixedHandler(out, hopts), Prefixed
}

// isJournalStream reports whether stream, the value of $JOURNAL_STREAM,
// is "<device>:<inode>" in decimal and names the file f is open on.
func isJournalStream(f *os.File, stream string) bool {
	devText, inoText, ok := strings.Cut(stream, ":")
	if !ok {
		return false
	}
	dev, err := strconv.ParseUint(devText, 10, 64)
	if err != nil {
		return false
	}
	ino, err := strconv.ParseUint(inoText, 10, 64)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	err = control(f, func(fd int) error { return unix.Fstat(fd, &st) })
	return err == nil && uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return control(f, func(fd int) error {
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}) == nil
}

// control runs fn on f's descriptor without f.Fd's side effect of putting it
// in blocking mode.
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
