//go:build linux

package logging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// journalLogger returns a debug-level logger in Journal mode that sends to a
// fake journal, its stderr (a regular file named by $JOURNAL_STREAM), and a
// function returning what reached that stderr.
func journalLogger(t *testing.T) (*slog.Logger, *fakeJournal, func() string) {
	t.Helper()
	j := newFakeJournal(t)
	stderr, read := tempStderr(t)
	t.Setenv("JOURNAL_STREAM", streamOf(t, stderr))
	h, mode := newHandler(stderr, slog.LevelDebug, options{socket: j.addr, replaceAttr: noTimeAttr})
	if mode != Journal {
		t.Fatalf("mode = %v, want journal", mode)
	}
	t.Cleanup(func() { h.(*journalHandler).out.(*nativeSender).close() })
	return slog.New(h), j, read
}

// header returns the first fields of every entry.
func header(msg, prio string) []field {
	return []field{{"MESSAGE", msg}, {"PRIORITY", prio}, {"SYSLOG_IDENTIFIER", "baton"}}
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.IntValue(42) }

func TestJournalFields(t *testing.T) {
	log, j, stderr := journalLogger(t)
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want []field
	}{{
		name: "lifecycle event",
		log: func(l *slog.Logger) {
			l.Info("workers ready", "event", "ready", "generation", 3, "worker", 2)
		},
		want: append(header("workers ready event=ready generation=3 worker=2", "6"),
			field{"MESSAGE_ID", MessageIDReady},
			field{"BATON_EVENT", "ready"}, field{"BATON_GENERATION", "3"}, field{"BATON_WORKER", "2"}),
	}, {
		name: "each event has its id",
		log:  func(l *slog.Logger) { l.Error("upgrade failed", "event", "upgrade-failed") },
		want: append(header("upgrade failed event=upgrade-failed", "3"),
			field{"MESSAGE_ID", "ff9b4b2fe17841e1937b733982ecd7dc"}, field{"BATON_EVENT", "upgrade-failed"}),
	}, {
		name: "unknown event has no id",
		log:  func(l *slog.Logger) { l.Warn("odd", "event", "upgrade-exploded") },
		want: append(header("odd event=upgrade-exploded", "4"), field{"BATON_EVENT", "upgrade-exploded"}),
	}, {
		name: "event inside a group has no id",
		log:  func(l *slog.Logger) { l.Info("x", slog.Group("child", "event", "ready")) },
		want: append(header("x child.event=ready", "6"), field{"BATON_CHILD_EVENT", "ready"}),
	}, {
		name: "event that is not a string has no id",
		log:  func(l *slog.Logger) { l.Info("x", "event", 7) },
		want: append(header("x event=7", "6"), field{"BATON_EVENT", "7"}),
	}, {
		name: "event from With, overridden by the record",
		log: func(l *slog.Logger) {
			l.With("event", "upgrade-started").Info("x", "event", "upgrade-committed")
		},
		want: append(header("x event=upgrade-started event=upgrade-committed", "6"),
			field{"MESSAGE_ID", MessageIDUpgradeCommitted},
			field{"BATON_EVENT", "upgrade-started"}, field{"BATON_EVENT", "upgrade-committed"}),
	}, {
		name: "WithAttrs and WithGroup",
		log: func(l *slog.Logger) {
			l.With("generation", 1).WithGroup("req").With("id", 7).Info("served", "path", "/a b")
		},
		want: append(header(`served generation=1 req.id=7 req.path="/a b"`, "6"),
			field{"BATON_GENERATION", "1"}, field{"BATON_REQ_ID", "7"}, field{"BATON_REQ_PATH", "/a b"}),
	}, {
		name: "WithGroup without attributes adds nothing",
		log:  func(l *slog.Logger) { l.WithGroup("empty").Info("plain") },
		want: header("plain", "6"),
	}, {
		name: "nested group attributes, empty ones left out",
		log: func(l *slog.Logger) {
			l.Info("x", slog.Group("w", "pid", 12, slog.Group("exit", "code", 3)), slog.Group("none"),
				slog.Group("", "inlined", true), slog.Attr{})
		},
		want: append(header("x w.pid=12 w.exit.code=3 inlined=true", "6"),
			field{"BATON_W_PID", "12"}, field{"BATON_W_EXIT_CODE", "3"}, field{"BATON_INLINED", "true"}),
	}, {
		name: "key sanitizing",
		log: func(l *slog.Logger) {
			l.Info("x", "worker_pid", 5, "http.status-code", 200, "ünï", 1, strings.Repeat("k", 70), 2)
		},
		want: append(header("x worker_pid=5 http.status-code=200 ünï=1 "+strings.Repeat("k", 70)+"=2", "6"),
			field{"BATON_WORKER_PID", "5"}, field{"BATON_HTTP_STATUS_CODE", "200"}, field{"BATON__N_", "1"},
			field{"BATON_" + strings.Repeat("K", 58), "2"}),
	}, {
		name: "value kinds",
		log: func(l *slog.Logger) {
			l.Info("x", "err", errors.New("boom: no such file"), "took", 1500*time.Millisecond,
				"at", time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), "v", valuer{}, "empty", "", "q", `a"b`)
		},
		want: append(header(`x err="boom: no such file" took=1.5s at=2025-01-02T03:04:05.000000006Z v=42 empty="" q="a\"b"`, "6"),
			field{"BATON_ERR", "boom: no such file"}, field{"BATON_TOOK", "1.5s"},
			field{"BATON_AT", "2025-01-02T03:04:05.000000006Z"}, field{"BATON_V", "42"},
			field{"BATON_EMPTY", ""}, field{"BATON_Q", `a"b`}),
	}, {
		name: "newline in the message and in a value",
		log:  func(l *slog.Logger) { l.Error("line one\nline two", "out", "a\nb\n") },
		want: append(header("line one\nline two out=\"a\\nb\\n\"", "3"), field{"BATON_OUT", "a\nb\n"}),
	}, {
		name: "debug",
		log:  func(l *slog.Logger) { l.Debug("x") },
		want: header("x", "7"),
	}, {
		name: "level above error",
		log:  func(l *slog.Logger) { l.Log(context.Background(), slog.LevelError+4, "x") },
		want: header("x", "3"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.log(log)
			got := j.recv(t)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
	if got := stderr(); got != "" {
		t.Errorf("stderr got %q, want nothing", got)
	}
}

func TestJournalBinaryForm(t *testing.T) {
	log, j, _ := journalLogger(t)
	log.Info("a\nb")
	raw, viaMemfd, err := j.recvRaw()
	if err != nil {
		t.Fatal(err)
	}
	want := "MESSAGE\n\x03\x00\x00\x00\x00\x00\x00\x00a\nb\nPRIORITY=6\nSYSLOG_IDENTIFIER=baton\n"
	if string(raw) != want || viaMemfd {
		t.Errorf("got %q (memfd %v), want %q in a datagram", raw, viaMemfd, want)
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 4, 7}, {slog.LevelDebug, 7}, {slog.LevelInfo - 1, 7},
		{slog.LevelInfo, 6}, {slog.LevelInfo + 2, 6},
		{slog.LevelWarn, 4}, {slog.LevelError - 1, 4},
		{slog.LevelError, 3}, {slog.LevelError + 8, 3},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			if got := priority(tt.level); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestJournalLargeEntryViaMemfd(t *testing.T) {
	log, j, stderr := journalLogger(t)
	big := strings.Repeat("x", 1<<20-4096) // larger than any default socket send buffer
	log.Info(big, "worker", 1)
	raw, viaMemfd, err := j.recvRaw()
	if err != nil {
		t.Fatal(err)
	}
	if !viaMemfd {
		t.Errorf("entry of %d bytes came as a datagram, want a memfd", len(raw))
	}
	got, err := parseNative(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := append(header(big+" worker=1", "6"), field{"BATON_WORKER", "1"})
	if !slices.Equal(got, want) {
		t.Errorf("got %d fields starting %.80v, want %d", len(got), got, len(want))
	}
	if got := stderr(); got != "" {
		t.Errorf("stderr got %q, want nothing", got)
	}
}

func TestJournalGoneFallsBackToStderr(t *testing.T) {
	log, j, stderr := journalLogger(t)
	log = log.With("generation", 2).WithGroup("g")
	log.Info("before")
	if got := j.recv(t); got[0].value != "before generation=2" {
		t.Fatalf("got %v, want MESSAGE=before generation=2", got)
	}
	j.close() // journald stops: its socket is gone
	log.Error("journald gone", "k", "v")
	log.Info("still here\nsecond line")
	want := "<3>level=ERROR msg=\"journald gone\" generation=2 g.k=v\n" +
		"<6>level=INFO msg=\"still here\\nsecond line\" generation=2\n"
	if got := stderr(); got != want {
		t.Errorf("stderr got\n%s\nwant\n%s", got, want)
	}
}

func TestJournalHandleReportsDoubleFailure(t *testing.T) {
	sendErr := errors.New("send failed")
	writeErr := errors.New("stderr closed")
	h := newJournalHandler(&captureSender{err: sendErr}, nil,
		NewPrefixedHandler(failingWriter{writeErr}, nil))
	err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "x", 0))
	if !errors.Is(err, sendErr) || !errors.Is(err, writeErr) {
		t.Errorf("got %v, want both %v and %v", err, sendErr, writeErr)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestJournalConcurrent(t *testing.T) {
	log, j, stderr := journalLogger(t)
	const goroutines, lines = 8, 100
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := log.With("g", g)
			for i := range lines {
				l.Info("line", "i", i)
			}
		})
	}
	seen := make(map[string]bool)
	for range goroutines * lines {
		f := j.recv(t)
		if len(f) != 5 || f[3].name != "BATON_G" || f[4].name != "BATON_I" {
			t.Fatalf("got %v", f)
		}
		seen[f[3].value+"/"+f[4].value] = true
	}
	wg.Wait()
	if len(seen) != goroutines*lines {
		t.Errorf("got %d distinct lines, want %d", len(seen), goroutines*lines)
	}
	if got := stderr(); got != "" {
		t.Errorf("stderr got %d bytes, want nothing: a send failed", len(got))
	}
}

func TestJournalSocketIsCloseOnExec(t *testing.T) {
	j := newFakeJournal(t)
	s, err := openSender(j.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	flags, err := unix.FcntlInt(s.sock.Fd(), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("journal socket flags %#x, want FD_CLOEXEC", flags)
	}
}

func TestOpenSenderMissing(t *testing.T) {
	dir := t.TempDir()
	regular := dir + "/regular"
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir + "/missing", regular} {
		t.Run(path, func(t *testing.T) {
			_, err := openSender(path)
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("got %v, want os.ErrNotExist", err)
			}
		})
	}
}

func TestDisabledLevelDoesNotAllocate(t *testing.T) {
	c := &captureSender{}
	log := slog.New(newJournalHandler(c, slog.LevelInfo, NewPrefixedHandler(failingWriter{}, nil)))
	log = log.With("generation", 1)
	allocs := testing.AllocsPerRun(100, func() {
		log.Debug("not logged", "worker", "w1")
	})
	if allocs != 0 {
		t.Errorf("a disabled Debug call made %v allocations, want 0", allocs)
	}
	if len(c.datagrams) != 0 {
		t.Errorf("sent %d datagrams, want 0", len(c.datagrams))
	}
}

func BenchmarkJournalHandle(b *testing.B) {
	log := slog.New(newJournalHandler(&captureSender{}, nil, NewPrefixedHandler(io.Discard, nil))).With("generation", 3)
	c := log.Handler().(*journalHandler).out.(*captureSender)
	for b.Loop() {
		log.Info("worker exited", "event", "worker-crashed", "worker", 2, "err", "exit status 1")
		c.datagrams = c.datagrams[:0]
	}
}
