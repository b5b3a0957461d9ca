//go:build linux

package relay

import (
	"bytes"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// MaxLine is the longest piece of a line the relay holds back waiting for its end; a
	// longer line is copied in pieces of this size.
	MaxLine = 64 << 10
	// FlushAfter is how long the relay holds back the start of a line (a prompt, a
	// progress dot) waiting for its end.
	FlushAfter = 100 * time.Millisecond
	// Coalesce is the longest pause the loop takes between two reads while children
	// write: a line after a quiet spell (no read for Coalesce) is copied at once; while
	// lines keep coming they are read many at a time, after a pause that adapts so that
	// no pipe fills up (halved when a read took half a pipe, doubled when it took less
	// than an eighth), between minPause and Coalesce. A child that writes steadily, less
	// than a pipeful per Coalesce, so costs about one wake-up per Coalesce however many
	// lines it writes, and one that writes more costs one per half pipeful: a wake-up of
	// a Go process costs tens of microseconds of CPU (the scheduler's threads, sysmon),
	// far more than copying a line.
	Coalesce = 10 * time.Millisecond
	// minPause is the shortest pause worth a timer; below it the loop reads on at once.
	minPause = 100 * time.Microsecond
	// minBuf is a stream's first read buffer. It doubles each time a read fills it, up to
	// MaxLine, so that a quiet child costs little and a chatty one few reads.
	minBuf = 4 << 10
)

// stream is one child's stdout or stderr: the read end of its pipe and the start of a line
// whose end has not come yet. It belongs to the loop.
type stream struct {
	fd    int
	size  int // the pipe's capacity
	sink  *sink
	buf   []byte
	held  int       // buf[:held] is the start of a line
	since time.Time // when buf[:held] started
}

// loop copies every stream to its sink until Close: it waits for streams with something
// to read, reads each once, and writes their complete lines to the sinks. It closes every
// fd it owns when it returns.
//
// The streams are in an epoll set of the relay's own, with EPOLLONESHOT: a stream that
// has been read is out of the set until the loop has paused and re-arms it.
// A pipe that has ever been polled calls its pollers back at every write; a disarmed
// stream's callback does nothing, so a child writing line after line during the pause
// wakes nobody. The runtime's poller waits on the set itself (nested epoll), so the loop
// parks like any goroutine and holds no thread in a system call.
func (r *Relay) loop() {
	defer close(r.done)
	defer r.shut()
	rc, err := r.ep.SyscallConn()
	if err != nil {
		return
	}
	events := make([]unix.EpollEvent, 64)
	var deadline, lastBusy time.Time
	pause := Coalesce
	var read []*stream // read this round: disarmed until re-armed
	for {
		if d := r.deadline(); !d.Equal(deadline) {
			deadline = d
			r.ep.SetReadDeadline(d)
		}
		n := 0
		err := rc.Read(func(fd uintptr) bool {
			var err error
			if n, err = unix.EpollWait(int(fd), events, 0); err != nil {
				n = 0 // EINTR: look again
			}
			return n > 0 // false: park until the set has something ready
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // the epoll file closed: cannot happen while the loop runs
		}
		start, busy, full, small := time.Now(), false, false, true
		for _, ev := range events[:n] {
			if int(ev.Fd) == r.wake {
				var b [8]byte
				unix.Read(r.wake, b[:])
				continue
			}
			r.mu.Lock()
			s := r.streams[ev.Fd]
			r.mu.Unlock()
			if s == nil {
				continue
			}
			got, ended := s.read(start)
			busy = busy || got > 0
			full = full || 2*got >= s.size
			small = small && 8*got < s.size
			if ended {
				r.forget(s)
			} else {
				read = append(read, s)
			}
		}
		r.flushDue(start)
		r.mu.Lock()
		closed, cut, left := r.closed, r.cut, len(r.streams)
		r.mu.Unlock()
		if cut || (closed && left == 0) {
			return
		}
		if busy && start.Sub(lastBusy) < Coalesce { // lines keep coming: batch them
			switch {
			case full:
				pause = max(pause/2, minPause/2)
			case small:
				pause = min(pause*2, Coalesce)
			}
			if pause >= minPause {
				r.pause(pause)
			}
		}
		if busy {
			lastBusy = time.Now()
		}
		for _, s := range read {
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(s.fd)}
			unix.EpollCtl(r.epfd, unix.EPOLL_CTL_MOD, s.fd, &ev) // ready again at once if it holds data
		}
		read = read[:0]
	}
}

// pause waits d before the next read: a rate limit on reads, not a wait for anything. It
// ends at once when Close is called: an exiting master waits for its workers' last lines,
// and a pause would only delay its exit (by up to Coalesce, at every upgrade).
func (r *Relay) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.stop:
	}
}

// read reads what s holds, once, and copies its complete lines to the sink. It reports
// how much it read, and whether the stream has ended.
func (s *stream) read(now time.Time) (read int, ended bool) {
	n, err := unix.Read(s.fd, s.buf[s.held:])
	if err == unix.EAGAIN || err == unix.EINTR {
		return 0, false
	}
	if err != nil || n == 0 { // end of stream: every writer closed (or EIO, which cannot happen)
		s.flush()
		return 0, true
	}
	end := s.held + n
	cut := 0
	if i := bytes.LastIndexByte(s.buf[s.held:end], '\n'); i >= 0 {
		cut = s.held + i + 1
	} else if end == len(s.buf) && len(s.buf) >= MaxLine {
		cut = end
	}
	s.sink.write(s.buf[:cut])
	if s.held == 0 || cut > 0 {
		s.since = now // the line held from now on started in this read
	}
	s.held = copy(s.buf, s.buf[cut:end])
	if end == len(s.buf) && len(s.buf) < MaxLine {
		bigger := make([]byte, 2*len(s.buf))
		copy(bigger, s.buf[:s.held])
		s.buf = bigger
	}
	return n, false
}

// flush copies the start of a line s holds, as it is.
func (s *stream) flush() {
	s.sink.write(s.buf[:s.held])
	s.held = 0
}

// deadline is when the first held line must go, or the zero time if none is held.
func (r *Relay) deadline() time.Time {
	var first time.Time
	for _, s := range r.list() {
		if s.held > 0 && (first.IsZero() || s.since.Before(first)) {
			first = s.since
		}
	}
	if first.IsZero() {
		return first
	}
	return first.Add(r.flushAfter)
}

// flushDue copies the held lines whose end did not come within flushAfter.
func (r *Relay) flushDue(now time.Time) {
	for _, s := range r.list() {
		if s.held > 0 && now.Sub(s.since) >= r.flushAfter {
			s.flush()
		}
	}
}

// list returns the streams. Only the loop changes a stream; Open only adds new ones.
func (r *Relay) list() []*stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := make([]*stream, 0, len(r.streams))
	for _, s := range r.streams {
		ss = append(ss, s)
	}
	return ss
}

// forget removes an ended stream and closes its read end.
func (r *Relay) forget(s *stream) {
	r.mu.Lock()
	delete(r.streams, int32(s.fd))
	r.mu.Unlock()
	unix.Close(s.fd) // closing also takes it out of the epoll set
}

// shut ends the loop: every stream left is read once more, what it holds is copied, and
// its read end closed; then the epoll instance, the eventfd and the sinks.
func (r *Relay) shut() {
	for _, s := range r.list() {
		if _, ended := s.read(time.Now()); !ended {
			s.flush()
		}
		r.forget(s)
	}
	r.ep.Close()
	unix.Close(r.wake)
	r.out.close()
	r.err.close()
}
