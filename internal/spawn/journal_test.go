//go:build linux

package spawn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeJournald listens where the child looks for journald's stream socket, for the test.
func fakeJournald(t testing.TB) *net.UnixListener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdout")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	old := journalSocket
	journalSocket = path
	t.Cleanup(func() { journalSocket = old })
	return l
}

// journald is the fake journald of BenchmarkStart, in a process of its own (so that its
// work is not the parent's): it listens on path, says "ready", and reads and discards
// every stream until its stdin closes.
func journald(path string) int {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startJournald starts journald in a child process and points the package at it.
func startJournald(b *testing.B) {
	path := filepath.Join(b.TempDir(), "stdout")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SPAWN_TEST_HELPER=journald", "SPAWN_TEST_JOURNALD="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		b.Fatalf("fake journald: %q", line)
	}
	old := journalSocket
	journalSocket = path
	b.Cleanup(func() { journalSocket = old })
}

// accepted is one stream the fake journald took: who connected and all it sent.
type accepted struct {
	cred *unix.Ucred
	data string
	conn *net.UnixConn
}

// acceptOne takes the next connection, with a deadline, and its sender's credentials.
func acceptOne(t *testing.T, l *net.UnixListener) *accepted {
	t.Helper()
	l.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("fake journald: accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	a := &accepted{conn: c}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cerr error
	rc.Control(func(fd uintptr) { a.cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cerr != nil {
		t.Fatalf("SO_PEERCRED: %v", cerr)
	}
	return a
}

// readAll reads what the stream carries until the child and its copies are gone.
func (a *accepted) readAll(t *testing.T) string {
	t.Helper()
	a.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(a.conn)
	if err != nil {
		t.Fatalf("fake journald: read: %v", err)
	}
	return string(b)
}

// startPiped starts a with fd 0 /dev/null and fd 1 and 2 a pipe, and returns the process,
// Start's warning, and the pipe's read end.
func startPiped(t *testing.T, a *Attr) (*os.Process, error, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	a.Files = []*os.File{devNull, w, w}
	p, warning, err := Start(a)
	w.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p, warning, r
}

// TestJournal: the child connects to journald itself (SO_PEERCRED names it), sends the
// header, and what it writes to the fds asked for arrives on the stream, in the order
// written; the other fd is the one given; the stream is blocking, shut for reading, and
// no extra fd is left open.
func TestJournal(t *testing.T) {
	const script = `echo "pid $$"; echo "<3>failed" >&2; sed -n 's/^flags:[[:space:]]*//p' /proc/$$/fdinfo/1; exec ls /proc/self/fd`
	tests := []struct {
		name           string
		stdout, stderr bool
		stream, pipe   string // expected, with PID for the pid, FLAGS for fd 1's flags
	}{
		{"stdout and stderr", true, true, "pid PID\n<3>failed\nFLAGS\n0\n1\n2\n3\n", ""},
		{"stderr only", false, true, "<3>failed\n", "pid PID\nFLAGS\n0\n1\n2\n3\n"},
		{"stdout only", true, false, "pid PID\nFLAGS\n0\n1\n2\n3\n", "<3>failed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := fakeJournald(t)
			a := sh(script)
			a.Journal = &Journal{Identifier: "hello", Stdout: tt.stdout, Stderr: tt.stderr}
			p, warning, r := startPiped(t, a)
			if warning != nil {
				t.Errorf("warning: %v", warning)
			}
			s := acceptOne(t, l)
			if int(s.cred.Pid) != p.Pid {
				t.Errorf("SO_PEERCRED pid %d, want the child's %d", s.cred.Pid, p.Pid)
			}
			// The child shut its end for reading: journald cannot write to it.
			if _, err := s.conn.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Errorf("write to the child's stream: %v, want EPIPE", err)
			}
			got := s.readAll(t)
			pipe, _ := io.ReadAll(r)
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			header := "hello\n\n6\n1\n0\n0\n0\n"
			body, ok := strings.CutPrefix(got, header)
			if !ok {
				t.Fatalf("stream %q, want it to start with the header %q", got, header)
			}
			// fd 1's flags in octal: O_RDWR (2) without O_NONBLOCK (04000).
			flags := "02"
			if !tt.stdout {
				flags = "01" // the pipe's write end
			}
			expand := func(s string) string {
				return strings.NewReplacer("PID", strconv.Itoa(p.Pid), "FLAGS", flags).Replace(s)
			}
			if want := expand(tt.stream); body != want {
				t.Errorf("stream body %q, want %q", body, want)
			}
			if want := expand(tt.pipe); string(pipe) != want {
				t.Errorf("pipe %q, want %q", pipe, want)
			}
		})
	}
}

// TestJournalFallback: when the stream cannot be made, the child runs with the fds it
// was given, and Start says why.
func TestJournalFallback(t *testing.T) {
	refusing := func(t *testing.T) {
		l := fakeJournald(t)
		l.SetUnlinkOnClose(false)
		l.Close() // the file stays, nobody listens: journald stopped
	}
	tests := []struct {
		name  string
		setup func(t *testing.T)
		step  string
		errno syscall.Errno
	}{
		{"no journald", func(t *testing.T) {
			old := journalSocket
			journalSocket = filepath.Join(t.TempDir(), "none")
			t.Cleanup(func() { journalSocket = old })
		}, "journal stream: connect", syscall.ENOENT},
		{"journald stopped", refusing, "journal stream: connect", syscall.ECONNREFUSED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			a := sh(`echo out; echo err >&2; exec ls /proc/self/fd`)
			a.Journal = &Journal{Identifier: "hello", Stdout: true, Stderr: true}
			p, warning, r := startPiped(t, a)
			out, _ := io.ReadAll(r)
			st, err := p.Wait()
			if err != nil || !st.Success() {
				t.Fatalf("child: %v %v", st, err)
			}
			var se *Error
			if !errors.As(warning, &se) || se.Step != tt.step || !errors.Is(warning, tt.errno) {
				t.Errorf("warning %v, want step %q and %v", warning, tt.step, tt.errno)
			}
			if want := "out\nerr\n0\n1\n2\n3\n"; string(out) != want {
				t.Errorf("pipe %q, want %q (the fds given, nothing more open)", out, want)
			}
		})
	}
	t.Run("and the exec fails", func(t *testing.T) {
		old := journalSocket
		journalSocket = filepath.Join(t.TempDir(), "none")
		t.Cleanup(func() { journalSocket = old })
		a := &Attr{Path: filepath.Join(t.TempDir(), "nothing"), Args: []string{"x"}, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
			Journal: &Journal{Identifier: "x", Stdout: true}}
		p, warning, err := Start(a)
		if p != nil || warning != nil {
			t.Fatalf("Start = %v, %v, %v; want no process", p, warning, err)
		}
		var se *Error
		if !errors.As(err, &se) || se.Step != "exec" {
			t.Errorf("err %v, want the exec's", err)
		}
	})
}

// TestJournalIdentifier: an identifier that would break the header is refused before the
// fork.
func TestJournalIdentifier(t *testing.T) {
	fakeJournald(t)
	for _, id := range []string{"", "a\nb", "a\x00b"} {
		a := sh(`exit 0`)
		a.Files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
		a.Journal = &Journal{Identifier: id, Stdout: true}
		if p, _, err := Start(a); err == nil {
			p.Kill()
			p.Wait()
			t.Errorf("identifier %q: started", id)
		}
	}
}

// BenchmarkStart measures one start of /bin/true, waited for: as a worker gets it off
// the journal, and with a journal stream of its own (a fake journald, in a process of its
// own, that reads and discards). Run it as
//
//	go test -run '^$' -bench Start -benchtime 2000x ./internal/spawn
func BenchmarkStart(b *testing.B) {
	for _, journal := range []bool{false, true} {
		b.Run(fmt.Sprintf("journal=%v", journal), func(b *testing.B) {
			a := &Attr{Path: "/bin/true", Args: []string{"true"}, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
			if journal {
				startJournald(b)
				a.Journal = &Journal{Identifier: "true", Stdout: true, Stderr: true}
			}
			var before, after, cbefore, cafter syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			syscall.Getrusage(syscall.RUSAGE_CHILDREN, &cbefore)
			b.ResetTimer()
			for range b.N {
				p, warning, err := Start(a)
				if err != nil || warning != nil {
					b.Fatal(err, warning)
				}
				p.Wait()
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			syscall.Getrusage(syscall.RUSAGE_CHILDREN, &cafter)
			cpu := func(r *syscall.Rusage) time.Duration {
				return time.Duration(r.Utime.Nano() + r.Stime.Nano())
			}
			b.ReportMetric(float64(cpu(&after)-cpu(&before))/float64(b.N), "parent-cpu-ns/op")
			// The child's work between fork and exec (the journal stream's connect), and
			// /bin/true's own run; the fake journald is reaped only at the end.
			b.ReportMetric(float64(cpu(&cafter)-cpu(&cbefore))/float64(b.N), "child-cpu-ns/op")
		})
	}
}
