package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// writeRecorder keeps each Write call apart.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestPrefixedLines(t *testing.T) {
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want []string
	}{
		{"debug", func(l *slog.Logger) { l.Debug("d", "k", 1) }, []string{"<7>level=DEBUG msg=d k=1\n"}},
		{"info", func(l *slog.Logger) { l.Info("worker ready", "event", "ready", "generation", 2) },
			[]string{"<6>level=INFO msg=\"worker ready\" event=ready generation=2\n"}},
		{"warn", func(l *slog.Logger) { l.Warn("w") }, []string{"<4>level=WARN msg=w\n"}},
		{"error", func(l *slog.Logger) { l.Error("e", "err", "exit status 1") }, []string{"<3>level=ERROR msg=e err=\"exit status 1\"\n"}},
		{"between levels", func(l *slog.Logger) {
			l.Log(context.Background(), slog.LevelDebug-4, "x")
			l.Log(context.Background(), slog.LevelInfo+2, "x")
			l.Log(context.Background(), slog.LevelError+1, "x")
		}, []string{"<7>level=DEBUG-4 msg=x\n", "<6>level=INFO+2 msg=x\n", "<3>level=ERROR+1 msg=x\n"}},
		{"newline stays in one line", func(l *slog.Logger) { l.Info("a\nb") }, []string{"<6>level=INFO msg=\"a\\nb\"\n"}},
		{"WithAttrs and WithGroup on every level", func(l *slog.Logger) {
			l = l.With("generation", 1).WithGroup("w").With("id", 3)
			l.Debug("x", "pid", 9)
			l.Error("y")
		}, []string{"<7>level=DEBUG msg=x generation=1 w.id=3 w.pid=9\n", "<3>level=ERROR msg=y generation=1 w.id=3\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &writeRecorder{}
			tt.log(slog.New(NewPrefixedHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug - 4, ReplaceAttr: noTimeAttr})))
			if got := strings.Join(w.writes, "|"); got != strings.Join(tt.want, "|") {
				t.Errorf("got writes\n%q\nwant\n%q", w.writes, tt.want)
			}
		})
	}
}

func TestPrefixedLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	log := slog.New(NewPrefixedHandler(&buf, &slog.HandlerOptions{Level: &level, ReplaceAttr: noTimeAttr}))
	log.Info("dropped")
	log.Warn("kept")
	level.Set(slog.LevelDebug)
	log.Debug("now kept")
	if got, want := buf.String(), "<4>level=WARN msg=kept\n<7>level=DEBUG msg=\"now kept\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPrefixedConcurrentLinesStayWhole(t *testing.T) {
	w := &writeRecorder{}
	log := slog.New(NewPrefixedHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const goroutines, lines = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := log.With("g", g)
			for i := range lines {
				// Alternate levels so the per-level handlers share the writer.
				if i%2 == 0 {
					l.Debug("line", "i", i)
				} else {
					l.Error("line", "i", i)
				}
			}
		})
	}
	wg.Wait()
	if len(w.writes) != goroutines*lines {
		t.Fatalf("got %d writes, want %d", len(w.writes), goroutines*lines)
	}
	for _, line := range w.writes {
		if !(strings.HasPrefix(line, "<7>") || strings.HasPrefix(line, "<3>")) || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("write %q is not one prefixed line", line)
		}
	}
}

// noTimeAttr drops the time attribute, so lines can be compared exactly.
func noTimeAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
