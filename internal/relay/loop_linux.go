//go:build linux

package relay

import (
	"bytes"
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
	// Coalesce is the pause the loop takes after a round that read something, when the
	// round before did too less than Coalesce earlier: a child that writes line after
	// line then has its lines read, and written to the sink, a pipeful at a time, not
	// one wake-up, read and write each. A line after a quiet spell is copied at once.
	Coalesce = time.Millisecond
	// minBuf is a stream's first read buffer. It doubles each time a read fills it, up to
	// MaxLine, so that a quiet child costs little and a chatty one few reads.
	minBuf = 4 << 10
)

// stream is one child's stdout or stderr: the read end of its pipe and the start of a line
// whose end has not come yet. It belongs to the loop.
type stream struct {
	fd    int
	sink  *sink
	buf   []byte
	held  int       // buf[:held] is the start of a line
	since time.Time // when buf[:held] started
}

// loop copies every stream to its sink until Close: it waits (epoll) for streams with
// something to read, reads each once, and writes their complete lines to the sinks. It
// closes every fd it owns when it returns.
//
// It waits in its own epoll instance, not the runtime's poller, for the sake of the
// pause: a pipe that has ever been polled wakes its pollers at every write, and the
// runtime's poller thread would wake for each line while the loop sleeps. In its own
// epoll_wait only the loop waits, and only when it has nothing to do.
func (r *Relay) loop() {
	defer close(r.done)
	defer r.shut()
	events := make([]unix.EpollEvent, 64)
	var lastBusy time.Time
	for {
		n, err := unix.EpollWait(r.epfd, events, r.timeout())
		if err != nil && err != unix.EINTR {
			return // EBADF, EINVAL: cannot happen with our own epfd
		}
		start, busy, full := time.Now(), false, false
		for _, ev := range events[:max(n, 0)] {
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
			read, ended := s.read(start)
			busy = busy || read > 0
			full = full || read >= MaxLine/2
			if ended {
				r.forget(s)
			}
		}
		r.flushDue(start)
		r.mu.Lock()
		closed, cut, left := r.closed, r.cut, len(r.streams)
		r.mu.Unlock()
		if cut || (closed && left == 0) {
			return
		}
		if busy && !full {
			if start.Sub(lastBusy) < Coalesce {
				pause()
			}
			lastBusy = time.Now()
		}
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

// pause sleeps for Coalesce in a plain nanosleep(2): the loop's thread sleeps in the
// kernel, without the scheduler's timers and wake-ups of time.Sleep.
func pause() {
	ts := unix.NsecToTimespec(Coalesce.Nanoseconds())
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// flush copies the start of a line s holds, as it is.
func (s *stream) flush() {
	s.sink.write(s.buf[:s.held])
	s.held = 0
}

// timeout is how long the loop may wait for the next event: until the first held line
// must go, or for ever.
func (r *Relay) timeout() int {
	var first time.Time
	for _, s := range r.list() {
		if s.held > 0 && (first.IsZero() || s.since.Before(first)) {
			first = s.since
		}
	}
	if first.IsZero() {
		return -1
	}
	ms := time.Until(first.Add(r.flushAfter)).Milliseconds() + 1
	return int(max(ms, 0))
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
	unix.Close(r.epfd)
	unix.Close(r.wake)
	r.out.close()
	r.err.close()
}
