package logging

import (
	"bufio"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAsyncNeverBlocks: a logger whose output is a pipe nobody reads does not block its
// callers; the lines that did not fit are counted, and the count is logged once the pipe is
// read again.
func TestAsyncNeverBlocks(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	t.Setenv("JOURNAL_STREAM", "")
	h, _ := newHandler(w, nil, options{replaceAttr: noTimeAttr})
	log := slog.New(h)
	const n = 20000 // far more than the pipe (64 KiB) and the queue hold
	done := make(chan struct{})
	go func() {
		for i := range n {
			log.Info("a line that nobody reads yet", "i", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("logging blocked on a pipe nobody reads")
	}
	var got, dropped int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "log lines dropped") {
			dropped = countOf(t, line)
			break
		}
		got++
	}
	if dropped == 0 || got+dropped > n {
		t.Fatalf("read %d lines, then a drop count of %d, for %d logged", got, dropped, n)
	}
}

func countOf(t *testing.T, line string) int {
	t.Helper()
	_, v, ok := strings.Cut(line, "count=")
	if !ok {
		t.Fatalf("no count in %q", line)
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
