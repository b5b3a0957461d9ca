//go:build linux

package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipe returns a pipe; both ends are closed at the end of the test.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// collect reads r into a buffer until the end; wait returns it, waiting at most 10s.
func collect(t *testing.T, r io.Reader) (wait func() string) {
	t.Helper()
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	return func() string {
		t.Helper()
		select {
		case s := <-out:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("the sink did not reach its end")
			return ""
		}
	}
}

// openFDs counts this process's open fds.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestNeeded(t *testing.T) {
	pr, pw := pipe(t)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock := os.NewFile(uintptr(sp[0]), "socket")
	defer sock.Close()
	unix.Close(sp[1])
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(sock.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf("%d:%d", st.Dev, st.Ino)

	for _, tc := range []struct {
		name        string
		f           *os.File
		journal     string
		want        bool
		wantJournal bool
	}{
		{"pipe write end", pw, "", true, false},
		{"pipe read end", pr, "", true, false},
		{"socket", sock, "", true, false},
		{"socket named by JOURNAL_STREAM", sock, journal, false, true},
		{"socket, JOURNAL_STREAM naming another file", sock, "1:2", true, false},
		{"socket, JOURNAL_STREAM garbage", sock, "x", true, false},
		{"regular file", file, "", false, false},
		{"/dev/null", null, "", false, false},
		{"nil", nil, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.journal)
			if got := needed(tc.f); got != tc.want {
				t.Errorf("needed = %v, want %v", got, tc.want)
			}
			if got := isJournal(tc.f); got != tc.wantJournal {
				t.Errorf("isJournal = %v, want %v", got, tc.wantJournal)
			}
		})
	}

	// New tells which stream is the journal's: stdout here, stderr a file.
	t.Setenv("JOURNAL_STREAM", journal)
	r, err := New(sock, file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(time.Second)
	if out, errs := r.Journal(); !out || errs {
		t.Errorf("Journal = %v, %v; want true (the journal stream), false (a file)", out, errs)
	}
	if out, errs := r.Relaying(); out || errs {
		t.Errorf("Relaying = %v, %v; want neither", out, errs)
	}
}

func TestNotRelayedIsPassedThrough(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	_, pw := pipe(t)
	r, err := New(file, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(time.Second)
	if out, errs := r.Relaying(); out || !errs {
		t.Fatalf("Relaying = %v, %v; want false (a file), true (a pipe)", out, errs)
	}
	o, err := r.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Stdout != file {
		t.Errorf("Stdout = %v, want the file itself", o.Stdout.Name())
	}
	if o.Stderr == pw {
		t.Error("Stderr is the pipe itself, not a relay")
	}
}

// TestStreamsStayDistinct: several children's stdout and stderr, each to its own sink,
// whole lines, none lost, and every fd closed at the end.
func TestStreamsStayDistinct(t *testing.T) {
	before := openFDs(t)
	outR, outW := pipe(t)
	errR, errW := pipe(t)
	r, err := New(outW, errW)
	if err != nil {
		t.Fatal(err)
	}
	outW.Close() // the relay holds its own duplicates
	errW.Close()
	gotOut, gotErr := collect(t, outR), collect(t, errR)

	const children, lines = 4, 500
	done := make(chan error, children)
	for c := range children {
		o, err := r.Open()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer o.Close()
			for i := range lines {
				if _, err := fmt.Fprintf(o.Stdout, "out child=%d line=%d %s\n", c, i, strings.Repeat("x", i%200)); err != nil {
					done <- err
					return
				}
				if _, err := fmt.Fprintf(o.Stderr, "err child=%d line=%d\n", c, i); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range children {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	check := func(name, got, prefix string) {
		t.Helper()
		seen := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(got))
		for sc.Scan() {
			var c, i int
			if _, err := fmt.Sscanf(sc.Text(), prefix+" child=%d line=%d", &c, &i); err != nil {
				t.Fatalf("%s: a line broken or mixed: %q", name, sc.Text())
			}
			seen[fmt.Sprint(c, i)] = true
		}
		if len(seen) != children*lines {
			t.Errorf("%s: %d distinct lines, want %d", name, len(seen), children*lines)
		}
	}
	check("stdout", gotOut(), "out")
	check("stderr", gotErr(), "err")
	if after := openFDs(t); after != before+2 { // outR and errR, closed at cleanup
		t.Errorf("%d fds open after Close, want %d", after, before+2)
	}
}

// TestSinkGone: once the sink's reader is gone, children keep writing without an error
// and without blocking, far past a pipe's capacity.
func TestSinkGone(t *testing.T) {
	sinkR, sinkW := pipe(t)
	r, err := New(sinkW, sinkW)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(time.Second)
	o, err := r.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	sinkR.Close()

	done := make(chan error, 1)
	go func() {
		line := []byte(strings.Repeat("y", 99) + "\n")
		for range 40000 { // 4 MB, sixty times the pipe's capacity
			// A raw write: os.File would turn EPIPE into a SIGPIPE on fds 1 and 2 only,
			// and these are not; the error is what a child would die of.
			if _, err := unix.Write(int(o.Stdout.Fd()), line); err != nil {
				done <- fmt.Errorf("child stdout: %w", err)
				return
			}
			if _, err := unix.Write(int(o.Stderr.Fd()), line); err != nil {
				done <- fmt.Errorf("child stderr: %w", err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a child's write blocked after its sink went away")
	}
}

// TestPartialLinesAssembled: a line a child writes in pieces reaches the sink whole, even
// when another child writes a whole line meanwhile.
func TestPartialLinesAssembled(t *testing.T) {
	sinkR, sinkW := pipe(t)
	r, err := New(sinkW, sinkW)
	if err != nil {
		t.Fatal(err)
	}
	r.flushAfter = time.Hour // the assembly, not the flush, is under test
	sinkW.Close()
	got := bufio.NewReader(sinkR)
	a, _ := r.Open()
	b, _ := r.Open()
	io.WriteString(a.Stdout, "a1 ")
	io.WriteString(b.Stdout, "b whole\n")
	if line, _ := got.ReadString('\n'); line != "b whole\n" {
		t.Fatalf("first line %q, want b's", line)
	}
	io.WriteString(a.Stdout, "a2 ")
	io.WriteString(a.Stdout, "a3\n")
	if line, _ := got.ReadString('\n'); line != "a1 a2 a3\n" {
		t.Fatalf("second line %q, want a's whole", line)
	}
	io.WriteString(a.Stdout, "no end")
	a.Close()
	b.Close()
	if err := r.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(got); string(rest) != "no end" {
		t.Errorf("at the end of the stream %q, want the unfinished line", rest)
	}
}

// TestUnfinishedLineFlushed: the start of a line whose end does not come is copied after
// FlushAfter, while the stream stays open.
func TestUnfinishedLineFlushed(t *testing.T) {
	sinkR, sinkW := pipe(t)
	r, err := New(sinkW, sinkW)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(time.Second)
	r.flushAfter = time.Millisecond
	o, _ := r.Open()
	defer o.Close()
	io.WriteString(o.Stdout, "Password: ")
	buf := make([]byte, 64)
	sinkR.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := sinkR.Read(buf)
	if err != nil || string(buf[:n]) != "Password: " {
		t.Fatalf("read %q, %v; want the prompt", buf[:n], err)
	}
}

// TestLongLines: lines longer than PIPE_BUF and than MaxLine arrive, byte for byte.
func TestLongLines(t *testing.T) {
	sinkR, sinkW := pipe(t)
	r, err := New(sinkW, sinkW)
	if err != nil {
		t.Fatal(err)
	}
	sinkW.Close()
	got := collect(t, sinkR)
	o, _ := r.Open()
	want := strings.Repeat("a", 5000) + "\n" + strings.Repeat("b", 3*MaxLine+17) + "\n" + "short\n"
	go func() {
		io.WriteString(o.Stdout, want)
		o.Close()
	}()
	if err := r.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if s := got(); s != want {
		t.Errorf("got %d bytes, want %d; first difference at %d", len(s), len(want), firstDiff(s, want))
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestChunk(t *testing.T) {
	line := func(n int) string { return strings.Repeat("x", n-1) + "\n" }
	for _, tc := range []struct {
		name string
		p    string
		want int
	}{
		{"small", line(10) + line(10), 20},
		{"exactly PIPE_BUF", line(pipeBuf), pipeBuf},
		{"lines past PIPE_BUF cut at the last line end inside it", line(4000) + line(200), 4000},
		{"one line past PIPE_BUF whole", line(5000) + line(10), 5000},
		{"no line end at all", strings.Repeat("x", 5000), 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chunk([]byte(tc.p)); got != tc.want {
				t.Errorf("chunk = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCloseCutsStragglers: a write end still held elsewhere (a worker's descendant) does
// not keep Close waiting beyond its timeout; it gets EPIPE afterwards.
func TestCloseCutsStragglers(t *testing.T) {
	_, sinkW := pipe(t)
	r, err := New(sinkW, sinkW)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := r.Open()
	defer o.Close()
	if err := r.Close(10 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "2 output streams") {
		t.Fatalf("Close = %v, want 2 streams cut", err)
	}
	// The cut ends the loop, which closes the read ends as it returns; Close waits for that
	// at most its timeout, which a loaded machine may outlast.
	var err2 error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err2 = unix.Write(int(o.Stdout.Fd()), []byte("late\n")); errors.Is(err2, syscall.EPIPE) {
			break
		}
	}
	if !errors.Is(err2, syscall.EPIPE) {
		t.Errorf("write after Close: %v, want EPIPE", err2)
	}
	if _, err := r.Open(); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
	if err := r.Close(time.Second); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSocketSink: a stream socket whose peer closed is a sink gone too.
func TestSocketSink(t *testing.T) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine := os.NewFile(uintptr(sp[0]), "sink")
	defer mine.Close()
	peerFile := os.NewFile(uintptr(sp[1]), "peer")
	peer, err := net.FileConn(peerFile)
	peerFile.Close() // peer holds its own duplicate
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(mine, mine)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(time.Second)
	o, _ := r.Open()
	defer o.Close()
	io.WriteString(o.Stdout, "before\n")
	br := bufio.NewReader(peer)
	if line, _ := br.ReadString('\n'); line != "before\n" {
		t.Fatalf("peer read %q", line)
	}
	peer.Close()
	for range 20000 {
		if _, err := unix.Write(int(o.Stdout.Fd()), bytes.Repeat([]byte("z"), 99)); err != nil {
			t.Fatalf("child write after the peer left: %v", err)
		}
	}
}
