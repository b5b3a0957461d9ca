//go:build linux

package relay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeBuf is PIPE_BUF on Linux: a write to a pipe of at most this many bytes is atomic.
const pipeBuf = 4096

// sink is where one relayed stream goes: a duplicate of the process's fd 1 or 2, owned; only
// the loop writes to it. Writing to the duplicate, not to os.Stdout or os.Stderr, keeps the
// runtime from raising SIGPIPE on EPIPE (it does so for fds 1 and 2 only), whatever the
// program's signal setup.
type sink struct {
	f    *os.File
	gone bool // EPIPE seen: the reader is gone for good; discard
}

func newSink(f *os.File) (*sink, error) {
	var fd int
	err := control(f, func(orig int) (err error) {
		fd, err = unix.FcntlInt(uintptr(orig), unix.F_DUPFD_CLOEXEC, 3)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("relay: duplicate %s: %w", f.Name(), os.NewSyscallError("fcntl", err))
	}
	// The description stays as it is (blocking or not): others share it.
	return &sink{f: os.NewFile(uintptr(fd), f.Name())}, nil
}

// write copies p, complete lines (or a piece of a line that is not coming to its end), to
// the sink in writes of at most PIPE_BUF bytes that end at a line end; a line longer than
// PIPE_BUF goes in one write of its own. Once the sink is gone it discards.
func (s *sink) write(p []byte) {
	for len(p) > 0 && !s.gone {
		n := chunk(p)
		if _, err := s.f.Write(p[:n]); err != nil && isGone(err) {
			s.gone = true
		}
		p = p[n:] // any other error loses this chunk only
	}
}

// chunk returns the length of the first write for p: at most PIPE_BUF bytes ending at a
// newline, else the whole first line, else all of p.
func chunk(p []byte) int {
	if len(p) <= pipeBuf {
		return len(p)
	}
	if i := bytes.LastIndexByte(p[:pipeBuf], '\n'); i >= 0 {
		return i + 1
	}
	if i := bytes.IndexByte(p[pipeBuf:], '\n'); i >= 0 {
		return pipeBuf + i + 1
	}
	return len(p)
}

// isGone reports whether a write error means the sink's reader went away: a pipe with no
// reader left, or a stream socket its peer closed. Neither comes back.
func isGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

func (s *sink) close() {
	if s != nil {
		s.f.Close()
	}
}
