package logging

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// asyncWriter writes lines for its callers on a goroutine of its own, so that a log
// output that stops taking them (a pipe whose reader is stopped or slow, a full terminal)
// never blocks the caller: the master's loop logs, and must never wait on a reader.
// Up to maxQueued lines wait; a line that finds the queue full is dropped and counted,
// and the count is reported (report) once the output takes lines again.
type asyncWriter struct {
	w       io.Writer
	lines   chan []byte
	pending sync.WaitGroup // lines queued and not yet written
	dropped atomic.Int64
	report  func(n int64) // logs how many lines were dropped; set before the first Write
}

// maxQueued bounds the lines waiting for a slow output: about as many as a master writes
// in a few busy seconds, a few hundred KiB at most.
const maxQueued = 1024

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, lines: make(chan []byte, maxQueued)}
	go a.run()
	flushers.Lock()
	flushers.list = append(flushers.list, a)
	flushers.Unlock()
	return a
}

// Write queues a copy of p, one line, and never blocks. It reports success for a line it
// drops: the caller has nothing better to do with it.
func (a *asyncWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	a.pending.Add(1)
	select {
	case a.lines <- b:
	default:
		a.pending.Done()
		a.dropped.Add(1)
	}
	return len(p), nil
}

func (a *asyncWriter) run() {
	for b := range a.lines {
		if n := a.dropped.Swap(0); n > 0 && a.report != nil {
			a.report(n)
		}
		a.w.Write(b) // an error (EPIPE: the reader is gone) loses the line; nothing else can be done
		a.pending.Done()
	}
}

// flush waits until every queued line is written, or until d has passed.
func (a *asyncWriter) flush(d time.Duration) bool {
	done := make(chan struct{})
	go func() { a.pending.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

var flushers struct {
	sync.Mutex
	list []*asyncWriter
}

// Flush waits, up to d in all, until the lines every logger of New queued are written. A
// program calls it before it exits, so that its last lines are not lost; it reports
// whether everything was written.
func Flush(d time.Duration) bool {
	flushers.Lock()
	list := append([]*asyncWriter(nil), flushers.list...)
	flushers.Unlock()
	deadline := time.Now().Add(d)
	ok := true
	for _, a := range list {
		ok = a.flush(time.Until(deadline)) && ok
	}
	return ok
}
