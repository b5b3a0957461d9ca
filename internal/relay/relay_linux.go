//go:build linux

package relay

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Open after Close.
var ErrClosed = errors.New("relay: closed")

// Relay holds the relayed streams of one process's children. Create it with New; it is
// safe for concurrent use.
type Relay struct {
	stdout, stderr *os.File // the process's own; given to a child when not relayed; not owned
	out, err       *sink    // nil: that stream is not relayed
	journalOut     bool     // stdout is the journal stream, passed as it is
	journalErr     bool     // the same for stderr
	flushAfter     time.Duration

	// Set when a stream is relayed; owned by the loop, which closes them when it returns.
	epfd int           // epoll instance: the read ends, and wake
	ep   *os.File      // epfd, for the runtime's poller to wait on
	wake int           // eventfd: Close pokes the loop
	done chan struct{} // closed when the loop has returned
	stop chan struct{} // closed by Close: the loop pauses no more

	mu      sync.Mutex
	streams map[int32]*stream // by read end; the loop's, added to by Open
	closed  bool              // Close was called: the loop returns once streams is empty
	cut     bool              // Close's timeout ran out: the loop ends every stream now
}

// New decides, once, which of stdout and stderr (this process's own fd 1 and 2) a child
// gets through a relay (see the package doc), and duplicates those (close-on-exec) as the
// relay's sinks. It does not change or close stdout and stderr. The caller closes the
// Relay with Close.
func New(stdout, stderr *os.File) (_ *Relay, err error) {
	r := &Relay{stdout: stdout, stderr: stderr, flushAfter: FlushAfter, epfd: -1, wake: -1,
		streams: map[int32]*stream{}}
	defer func() {
		if err != nil {
			r.out.close()
			r.err.close()
			closeFD(r.epfd)
			closeFD(r.wake)
		}
	}()
	if needed(stdout) {
		if r.out, err = newSink(stdout); err != nil {
			return nil, err
		}
	}
	if needed(stderr) {
		if r.err, err = newSink(stderr); err != nil {
			return nil, err
		}
	}
	r.journalOut, r.journalErr = isJournal(stdout), isJournal(stderr)
	if r.out == nil && r.err == nil {
		return r, nil
	}
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("relay: %w", os.NewSyscallError("epoll_create1", err))
	}
	if r.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("relay: %w", os.NewSyscallError("eventfd", err))
	}
	if err = r.watch(r.wake, 0); err != nil {
		return nil, err
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller: the loop parks
	// until the epoll set has something ready, without holding a thread in epoll_wait.
	if err = unix.SetNonblock(r.epfd, true); err != nil {
		return nil, fmt.Errorf("relay: %w", os.NewSyscallError("fcntl", err))
	}
	r.ep = os.NewFile(uintptr(r.epfd), "relay-epoll")
	r.done, r.stop = make(chan struct{}), make(chan struct{})
	go r.loop()
	return r, nil
}

// Relaying reports which streams a child gets through the relay.
func (r *Relay) Relaying() (stdout, stderr bool) {
	return r.out != nil, r.err != nil
}

// Journal reports which of the streams a child is given as they are is the journal
// stream $JOURNAL_STREAM names (systemd.exec(5)): a child may be given a stream of its own
// to journald in its place (internal/spawn's Attr.Journal).
func (r *Relay) Journal() (stdout, stderr bool) {
	return r.journalOut, r.journalErr
}

// Output is one child's standard output and error.
type Output struct {
	Stdout, Stderr *os.File // give them to the child as its fd 1 and 2
	own            []*os.File
}

// Open returns the stdout and stderr for one child: for a relayed stream, the write end
// of a new pipe whose content the relay copies to the sink; otherwise the process's own
// file. Close the Output once the child has started (or failed to).
func (r *Relay) Open() (*Output, error) {
	o := &Output{Stdout: r.stdout, Stderr: r.stderr}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	for _, s := range []struct {
		sink *sink
		dst  **os.File
	}{{r.out, &o.Stdout}, {r.err, &o.Stderr}} {
		if s.sink == nil {
			continue
		}
		w, err := r.start(s.sink)
		if err != nil {
			o.Close()
			return nil, err
		}
		*s.dst = w
		o.own = append(o.own, w)
	}
	return o, nil
}

// Close closes the write ends o holds. A relayed stream ends once every other copy of its
// write end (the child's, its descendants') is closed too. Safe to call twice.
func (o *Output) Close() {
	for _, f := range o.own {
		f.Close()
	}
	o.own = nil
}

// start makes one pipe for a child's stream, to be copied to s, and returns its write end.
// r.mu is held.
func (r *Relay) start(s *sink) (*os.File, error) {
	var fds [2]int
	// The write end stays blocking: the child shares its file description, and a program
	// whose stdout is non-blocking fails with EAGAIN where it expects to wait. The read end
	// is the loop's, non-blocking.
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("relay: %w", os.NewSyscallError("pipe2", err))
	}
	err := unix.SetNonblock(fds[0], true)
	if err == nil {
		err = r.watch(fds[0], unix.EPOLLONESHOT)
	}
	if err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, err
	}
	size, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		size = 64 << 10 // the default
	}
	r.streams[int32(fds[0])] = &stream{fd: fds[0], size: size, sink: s, buf: make([]byte, minBuf)}
	return os.NewFile(uintptr(fds[1]), "relay-write"), nil
}

// watch adds fd to the loop's epoll set, for reading, with flags.
func (r *Relay) watch(fd int, flags uint32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | flags, Fd: int32(fd)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("relay: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return nil
}

// poke wakes the loop.
func (r *Relay) poke() {
	unix.Write(r.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// Close stops Open and waits, at most timeout, until every stream has ended (every child
// and its descendants closed their copies) and what they wrote has been copied. Streams
// still open then are cut: their read ends are closed, and whoever still writes to them
// gets EPIPE. The sinks are closed last. The error says how many streams were cut. Safe
// to call twice; a nil Relay is a no-op.
func (r *Relay) Close(timeout time.Duration) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if r.done == nil { // nothing relayed
		return nil
	}
	close(r.stop)
	r.poke()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-r.done:
		return nil
	case <-timer.C:
	}
	r.mu.Lock()
	r.cut = true
	n := len(r.streams)
	r.mu.Unlock()
	r.poke()
	// The loop returns at once, unless it is in a write to a sink that does not take it.
	timer.Reset(timeout)
	select {
	case <-r.done:
	case <-timer.C:
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("relay: %d output streams still open after %s (held by a worker's descendant?); cut", n, timeout)
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
