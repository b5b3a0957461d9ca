//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logWatch keeps the lines a process tree writes (baton's masters and workers share one
// pipe), each with the time the driver read it, and lets the driver wait for a line. The
// time a line is read is within microseconds of the time it was written: the pipe is read
// continuously.
type logWatch struct {
	mu      sync.Mutex
	lines   []logLine
	changed chan struct{} // closed and replaced at each new line, and at end of stream
	eof     bool
}

type logLine struct {
	at     time.Time
	text   string
	fields map[string]string
}

// newLogWatch reads r until end of stream, copying every line to copyTo, then closes
// both.
func newLogWatch(r io.ReadCloser, copyTo io.WriteCloser) *logWatch {
	w := &logWatch{changed: make(chan struct{})}
	go func() {
		defer r.Close()
		defer copyTo.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			now := time.Now()
			text := sc.Text()
			fmt.Fprintln(copyTo, text)
			w.mu.Lock()
			w.lines = append(w.lines, logLine{at: now, text: text, fields: parseFields(text)})
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.eof = true
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}()
	return w
}

// mark returns the index the next line will have: wait(mark(), …) sees only lines written
// after now.
func (w *logWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines)
}

// wait returns the first line at index from or later for which match is true, and its
// index; it waits for it until deadline.
func (w *logWatch) wait(from int, deadline time.Time, what string, match func(map[string]string) bool) (int, logLine, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		for i := from; i < len(w.lines); i++ {
			if match(w.lines[i].fields) {
				l := w.lines[i]
				w.mu.Unlock()
				return i, l, nil
			}
		}
		from = len(w.lines)
		ch, eof := w.changed, w.eof
		w.mu.Unlock()
		if eof {
			return 0, logLine{}, fmt.Errorf("log line %s: the log ended", what)
		}
		select {
		case <-ch:
		case <-timer.C:
			return 0, logLine{}, fmt.Errorf("log line %s: %w", what, os.ErrDeadlineExceeded)
		}
	}
}

// between returns a copy of the lines from index from up to, not including, to.
func (w *logWatch) between(from, to int) []logLine {
	w.mu.Lock()
	defer w.mu.Unlock()
	to = min(to, len(w.lines))
	if from >= to {
		return nil
	}
	return append([]logLine(nil), w.lines[from:to]...)
}

// tail returns the last n lines, for error reports.
func (w *logWatch) tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, l := range w.lines[max(0, len(w.lines)-n):] {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// msgFrom matches a log line with this msg, from the process pid (slog's "pid" attribute).
func msgFrom(msg string, pid int) func(map[string]string) bool {
	p := strconv.Itoa(pid)
	return func(f map[string]string) bool { return f["msg"] == msg && f["pid"] == p }
}

// msgPrefixFrom matches a log line whose msg starts with prefix, from the process pid.
func msgPrefixFrom(prefix string, pid int) func(map[string]string) bool {
	p := strconv.Itoa(pid)
	return func(f map[string]string) bool { return strings.HasPrefix(f["msg"], prefix) && f["pid"] == p }
}

// parseFields parses a log/slog text line, key=value pairs where a value may be quoted
// Go-style. What does not parse is skipped; the first occurrence of a key wins.
func parseFields(line string) map[string]string {
	f := map[string]string{}
	for s := line; s != ""; {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			// Not a key: skip a word.
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				break
			}
			s = s[sp:]
			continue
		}
		key, rest := s[:eq], s[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				sp = len(rest)
			}
			val, rest = rest[:sp], rest[sp:]
		}
		if _, ok := f[key]; !ok {
			f[key] = val
		}
		s = rest
	}
	return f
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
