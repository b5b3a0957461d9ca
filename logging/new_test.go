//go:build linux

package logging

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestModeDetection(t *testing.T) {
	j := newFakeJournal(t)
	regular := j.addr + ".regular"
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		stream func(stderr *os.File) string // $JOURNAL_STREAM
		socket string
		want   Mode
	}{
		{"stream names stderr", func(f *os.File) string { return streamOf(t, f) }, j.addr, Journal},
		{"stream names stderr, no journald socket", func(f *os.File) string { return streamOf(t, f) }, j.addr + ".missing", Prefixed},
		{"stream names stderr, socket path is a file", func(f *os.File) string { return streamOf(t, f) }, regular, Prefixed},
		{"stream names another inode", func(f *os.File) string {
			dev, ino, _ := strings.Cut(streamOf(t, f), ":")
			n, _ := strconv.ParseUint(ino, 10, 64)
			return fmt.Sprintf("%s:%d", dev, n+1)
		}, j.addr, Prefixed},
		{"stream names another device", func(f *os.File) string {
			dev, ino, _ := strings.Cut(streamOf(t, f), ":")
			n, _ := strconv.ParseUint(dev, 10, 64)
			return fmt.Sprintf("%d:%s", n+1, ino)
		}, j.addr, Prefixed},
		{"no stream", func(*os.File) string { return "" }, j.addr, Prefixed},
		{"malformed: one number", func(f *os.File) string { dev, _, _ := strings.Cut(streamOf(t, f), ":"); return dev }, j.addr, Prefixed},
		{"malformed: trailing colon", func(f *os.File) string { return streamOf(t, f) + ":" }, j.addr, Prefixed},
		{"malformed: spaces", func(f *os.File) string { return " " + streamOf(t, f) }, j.addr, Prefixed},
		{"malformed: hex", func(*os.File) string { return "0x1:0x2" }, j.addr, Prefixed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr, read := tempStderr(t)
			t.Setenv("JOURNAL_STREAM", tt.stream(stderr))
			h, got := newHandler(stderr, nil, options{socket: tt.socket, replaceAttr: noTimeAttr})
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			slog.New(h).Info("hello", "worker", 1)
			if tt.want == Journal {
				defer h.(*journalHandler).out.(*nativeSender).close()
				want := "hello worker=1"
				if f := j.recv(t); f[0].value != want {
					t.Errorf("journal got %v, want MESSAGE=%s", f, want)
				}
				if got := read(); got != "" {
					t.Errorf("stderr got %q, want nothing", got)
				}
				return
			}
			if got, want := read(), "<6>level=INFO msg=hello worker=1\n"; got != want {
				t.Errorf("stderr got %q, want %q", got, want)
			}
		})
	}
}

// openPTY returns both ends of a new pseudo-terminal, or skips the test.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var n int
	err = control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err != nil {
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

func TestModeTerminal(t *testing.T) {
	master, tty := openPTY(t)
	for _, stream := range []string{"", "1:2"} {
		t.Run("JOURNAL_STREAM="+stream, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", stream)
			h, mode := newHandler(tty, nil, options{socket: "/nonexistent", replaceAttr: noTimeAttr})
			if mode != Text {
				t.Fatalf("got %v, want text", mode)
			}
			slog.New(h).Warn("on a terminal", "worker", 1)
			if err := master.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(master).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			// The terminal turns "\n" into "\r\n".
			if want := "level=WARN msg=\"on a terminal\" worker=1\r\n"; line != want {
				t.Errorf("got %q, want %q", line, want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	stderr, read := tempStderr(t)
	log, mode := New(stderr, nil)
	if mode != Prefixed {
		t.Fatalf("got %v, want prefixed", mode)
	}
	log.Debug("hidden")
	log.Info("shown")
	got := read()
	if !strings.HasPrefix(got, "<6>time=") || !strings.HasSuffix(got, " level=INFO msg=shown\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("got %q, want one <6> line with a time and msg=shown", got)
	}
}

func TestModeString(t *testing.T) {
	tests := []struct {
		mode Mode
		want string
	}{{Text, "text"}, {Prefixed, "prefixed"}, {Journal, "journal"}, {Mode(9), "Mode(9)"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.mode.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
