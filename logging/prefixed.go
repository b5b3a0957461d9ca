package logging

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// Syslog priorities (sd-daemon(3) SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR)
// that slog levels map to.
const (
	priorityErr     = 3
	priorityWarning = 4
	priorityInfo    = 6
	priorityDebug   = 7
)

// priority returns the syslog priority of a slog level: below Info is debug
// (7), below Warn is info (6), below Error is warning (4), the rest error (3).
func priority(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return priorityDebug
	case l < slog.LevelWarn:
		return priorityInfo
	case l < slog.LevelError:
		return priorityWarning
	}
	return priorityErr
}

// prefixes are the line prefixes of a prefixedHandler, indexed like its
// handlers.
var prefixes = [...]string{"<7>", "<6>", "<4>", "<3>"}

// prefixIndex returns the index in prefixes of level l.
func prefixIndex(l slog.Level) int {
	switch priority(l) {
	case priorityDebug:
		return 0
	case priorityInfo:
		return 1
	case priorityWarning:
		return 2
	}
	return 3
}

// NewPrefixedHandler returns a handler that writes slog text lines
// (slog.TextHandler, with opts) to w, each prefixed with the syslog priority
// of its level as sd-daemon(3) defines it: "<7>" for debug, "<6>" info, "<4>"
// warn, "<3>" error. journald strips the prefix from a line it reads on a
// service's stdout or stderr and stores it as PRIORITY.
//
// Each line, prefix included, reaches w in a single Write call, and no two
// Write calls overlap, so lines from concurrent goroutines never interleave
// and a pipe shared with other processes receives whole lines.
func NewPrefixedHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	lw := &lineWriter{w: w}
	h := &prefixedHandler{}
	for i, p := range prefixes {
		h.byLevel[i] = slog.NewTextHandler(prefixWriter{lw: lw, prefix: p}, opts)
	}
	return h
}

// prefixedHandler holds one slog.TextHandler per priority; they share one
// lineWriter and carry the same attributes and groups.
type prefixedHandler struct {
	byLevel [len(prefixes)]slog.Handler
}

func (h *prefixedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.byLevel[0].Enabled(ctx, l)
}

func (h *prefixedHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.byLevel[prefixIndex(r.Level)].Handle(ctx, r)
}

func (h *prefixedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := &prefixedHandler{}
	for i, th := range h.byLevel {
		h2.byLevel[i] = th.WithAttrs(attrs)
	}
	return h2
}

func (h *prefixedHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := &prefixedHandler{}
	for i, th := range h.byLevel {
		h2.byLevel[i] = th.WithGroup(name)
	}
	return h2
}

// lineWriter serializes writes to w and glues a prefix to each line, so the
// pair goes out in one Write call.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// prefixWriter writes each line it gets through lw, after prefix.
type prefixWriter struct {
	lw     *lineWriter
	prefix string
}

func (p prefixWriter) Write(line []byte) (int, error) {
	lw := p.lw
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(append(lw.buf[:0], p.prefix...), line...)
	_, err := lw.w.Write(lw.buf)
	if cap(lw.buf) > 64<<10 {
		lw.buf = nil // one huge line must not pin its buffer forever
	}
	if err != nil {
		return 0, err
	}
	return len(line), nil
}
