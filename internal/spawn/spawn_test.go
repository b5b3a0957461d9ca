//go:build linux

package spawn

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a child: SPAWN_TEST_HELPER says which.
func TestMain(m *testing.M) {
	switch os.Getenv("SPAWN_TEST_HELPER") {
	case "pdeathsig":
		var sig int32
		err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0)
		fmt.Println(sig, err)
		os.Exit(0)
	case "nofile":
		lim, err := OriginalNofile()
		fmt.Println(lim.Cur, lim.Max, err)
		os.Exit(0)
	case "journald":
		os.Exit(journald(os.Getenv("SPAWN_TEST_JOURNALD")))
	case "replaced":
		os.Exit(replacedHelper())
	}
	// What the shell running the tests left open without close-on-exec must not count
	// as leaked (baton does the same at start).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	os.Exit(m.Run())
}

// run starts a with stdout and stderr on a pipe, and returns what the child wrote and how
// it exited.
func run(t *testing.T, a *Attr) (string, *os.ProcessState) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	a.Files = append([]*os.File{devNull, w, w}, a.Files...)
	p, warning, err := Start(a)
	w.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if warning != nil {
		t.Errorf("Start: warning %v", warning)
	}
	out, _ := io.ReadAll(r)
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(out), st
}

func sh(script string, args ...string) *Attr {
	return &Attr{Path: "/bin/sh", Args: append([]string{"sh", "-c", script, "sh"}, args...), Env: []string{"PATH=/usr/bin:/bin"}}
}

// field returns the value of "key:" in /proc/PID/status text.
func field(t *testing.T, status, key string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in:\n%s", key, status)
	return ""
}

func TestListenPID(t *testing.T) {
	tests := []struct {
		name string
		env  []string
	}{
		{"added", nil},
		{"replaces a stale one", []string{"LISTEN_PID=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sh(`echo "$$ $LISTEN_PID"`)
			a.Env = append(a.Env, tt.env...)
			a.ListenPID = true
			out, _ := run(t, a)
			f := strings.Fields(out)
			if len(f) != 2 || f[0] != f[1] {
				t.Errorf("pid, LISTEN_PID = %q, want the same number twice", out)
			}
		})
	}
	t.Run("not asked", func(t *testing.T) {
		out, _ := run(t, sh(`echo "${LISTEN_PID-unset}"`))
		if got := strings.TrimSpace(out); got != "unset" {
			t.Errorf("LISTEN_PID = %q, want unset", got)
		}
	})
}

// TestWatchdogPID: WATCHDOG_PID is the child's own pid, as systemd sets it for a service's
// main process, beside LISTEN_PID or alone; a stale one in Env is replaced.
func TestWatchdogPID(t *testing.T) {
	tests := []struct {
		name      string
		listenPID bool
		env       []string
	}{
		{"alone", false, nil},
		{"with LISTEN_PID", true, nil},
		{"replaces a stale one", true, []string{"WATCHDOG_PID=1", "LISTEN_PID=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sh(`echo "$$ $WATCHDOG_PID ${LISTEN_PID-unset}"; env | grep -c '^WATCHDOG_PID='`)
			a.Env = append(a.Env, tt.env...)
			a.ListenPID, a.WatchdogPID = tt.listenPID, true
			out, _ := run(t, a)
			f := strings.Fields(out)
			want := "unset"
			if tt.listenPID {
				want = f[0]
			}
			if len(f) != 4 || f[0] != f[1] || f[2] != want || f[3] != "1" {
				t.Errorf("pid, WATCHDOG_PID, LISTEN_PID, count = %q, want the pid, the pid, %s, 1", out, want)
			}
		})
	}
}

func TestEnvLastWins(t *testing.T) {
	a := sh(`env | grep ^SPAWN_ | sort`)
	a.Env = append(a.Env, "SPAWN_A=1", "SPAWN_B=2", "SPAWN_A=3")
	out, _ := run(t, a)
	if want := "SPAWN_A=3\nSPAWN_B=2\n"; out != want {
		t.Errorf("environment:\n%s\nwant:\n%s", out, want)
	}
}

// TestSignals: blocked at the fork (as baton blocks USR2 and WINCH), the child still starts
// with an empty mask, the asked signals ignored and every other at its default, also one
// this process ignores (as a process started with a signal ignored would).
func TestSignals(t *testing.T) {
	signal.Ignore(syscall.SIGUSR1)
	defer signal.Reset(syscall.SIGUSR1)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var block, old unix.Sigset_t
	for _, s := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGWINCH} {
		const bits = syscall.Signal(8 * unsafe.Sizeof(block.Val[0])) // 32 on 32-bit architectures
		block.Val[(s-1)/bits] |= 1 << ((s - 1) % bits)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &block, &old); err != nil {
		t.Fatal(err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)

	a := sh(`exec cat /proc/self/status`)
	a.Ignore = []syscall.Signal{syscall.SIGUSR2, syscall.SIGWINCH}
	out, _ := run(t, a)
	if got := field(t, out, "SigBlk"); got != "0000000000000000" {
		t.Errorf("SigBlk = %s, want none", got)
	}
	if got, want := field(t, out, "SigIgn"), fmt.Sprintf("%016x", block.Val[0]); got != want {
		t.Errorf("SigIgn = %s, want %s (USR2 and WINCH only)", got, want)
	}
}

// TestFiles: Files[i] is fd i, whatever number it had in the parent (also one lower than
// its place), and nothing else is open.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	var files []*os.File
	for _, name := range []string{"three", "four"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(name)
		f.Seek(0, io.SeekStart)
		defer f.Close()
		files = append(files, f)
	}
	a := sh(`cat <&3; echo; cat <&4; echo; readlink /proc/$$/fd/5; exec ls /proc/self/fd`)
	// fd 1 in the parent, 5 in the child: placed before fd 1 is replaced by the pipe.
	a.Files = append(files, os.Stdout)
	out, _ := run(t, a)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	stdout, err := os.Readlink("/proc/self/fd/1")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 3 || lines[0] != "three" || lines[1] != "four" || lines[2] != stdout {
		t.Fatalf("fd 3, 4, 5 = %q, want three, four, %s", lines, stdout)
	}
	// ls lists 0-5 and the directory it reads, 6.
	if got, want := lines[3:], []string{"0", "1", "2", "3", "4", "5", "6"}; !slices.Equal(got, want) {
		t.Errorf("open fds %v, want %v", got, want)
	}
}

func TestDirAndProcessGroup(t *testing.T) {
	dir := t.TempDir()
	a := sh(`pwd; exec cat /proc/self/status`)
	a.Dir = dir
	a.Setpgid = true
	out, _ := run(t, a)
	cwd, status, _ := strings.Cut(out, "\n")
	if cwd != dir {
		t.Errorf("working directory %q, want %q", cwd, dir)
	}
	if pid, pgid := field(t, status, "Pid"), field(t, status, "NSpgid"); pid != pgid {
		t.Errorf("process group %s, want its own (%s)", pgid, pid)
	}
}

func TestNofile(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := min(lim.Max, 1000)
	a := sh(`ulimit -Sn`)
	a.Nofile = &syscall.Rlimit{Cur: want, Max: lim.Max}
	out, _ := run(t, a)
	if got := strings.TrimSpace(out); got != strconv.FormatUint(want, 10) {
		t.Errorf("soft RLIMIT_NOFILE %s, want %d", got, want)
	}
}

// TestOriginalNofile: a Go program started with a low soft limit runs with a raised one;
// OriginalNofile tells the low one.
func TestOriginalNofile(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 600 {
		t.Skipf("hard RLIMIT_NOFILE %d is too low to lower", lim.Max)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 512 && exec "$0"`, self)
	cmd.Env = append(os.Environ(), "SPAWN_TEST_HELPER=nofile", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := fmt.Sprintf("512 %d <nil>\n", lim.Max); string(out) != want {
		t.Errorf("OriginalNofile in a Go program started with 512: %q, want %q", out, want)
	}
}

func TestPdeathsig(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a := &Attr{Path: self, Args: []string{self}, Env: []string{"SPAWN_TEST_HELPER=pdeathsig", "GORACE=atexit_sleep_ms=0"}, Pdeathsig: syscall.SIGTERM}
	out, _ := run(t, a)
	if want := fmt.Sprintf("%d <nil>\n", syscall.SIGTERM); out != want {
		t.Errorf("PR_GET_PDEATHSIG: %q, want %q", out, want)
	}
}

func TestCredential(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	a := sh(`echo "$(id -u) $(id -g) $(id -G)"`)
	a.Credential = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}
	out, _ := run(t, a)
	if want := "65534 65534 65534\n"; out != want {
		t.Errorf("uid gid groups: %q, want %q", out, want)
	}
}

// TestFailures: what keeps the program from running is Start's error, with the step, and
// the child is reaped.
func TestFailures(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	tests := []struct {
		name     string
		a        Attr
		step     string
		wantErr  error
		errMatch string
	}{
		{"no such program", Attr{Path: filepath.Join(dir, "nothing"), Args: []string{"x"}}, "exec", fs.ErrNotExist, "exec "},
		{"not executable", Attr{Path: notExec, Args: []string{"x"}}, "exec", fs.ErrPermission, "exec "},
		{"no such dir", Attr{Path: "/bin/true", Args: []string{"true"}, Dir: filepath.Join(dir, "nothing")}, "chdir", fs.ErrNotExist, "chdir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.a.Files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
			p, _, err := Start(&tt.a)
			if err == nil {
				p.Kill()
				p.Wait()
				t.Fatal("started")
			}
			var se *Error
			if !errors.As(err, &se) || se.Step != tt.step || !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errMatch) {
				t.Errorf("err = %v (%#v), want step %s and %v", err, se, tt.step, tt.wantErr)
			}
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); err != syscall.ECHILD {
				t.Errorf("a child is left: wait4 = %d, %v", pid, err)
			}
		})
	}
	if _, _, err := Start(&Attr{Path: "no-such-program-anywhere", Args: []string{"x"}}); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("bare name not in PATH: %v, want exec.ErrNotFound", err)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "prog"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "data"), []byte("x"), 0o644)
	t.Setenv("PATH", "/usr/bin:/bin")
	tests := []struct {
		name, prog string
		env        []string
		dir        string
		want       string // "" = error
	}{
		{"in env PATH", "prog", []string{"PATH=/nowhere:" + bin}, "", filepath.Join(bin, "prog")},
		{"last PATH wins", "prog", []string{"PATH=" + bin, "PATH=/nowhere"}, "", ""},
		{"process PATH without one in env", "sh", nil, "", "/usr/bin/sh"},
		{"not executable", "data", []string{"PATH=" + bin}, "", ""},
		{"relative PATH entry, from dir", "prog", []string{"PATH=bin"}, dir, "bin/prog"},
		{"with a slash: as is", "./x/y", nil, "", "./x/y"},
		{"empty", "", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookPath(tt.prog, tt.env, tt.dir)
			if tt.want == "" {
				if err == nil {
					t.Errorf("LookPath = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("LookPath = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestDedupEnv(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, []string{}},
		{[]string{"A=1", "B=2"}, []string{"A=1", "B=2"}},
		{[]string{"A=1", "B=2", "A=3"}, []string{"B=2", "A=3"}},
		{[]string{"A=", "A=x", "NOEQ", "NOEQ"}, []string{"A=x", "NOEQ"}},
	}
	for _, tt := range tests {
		if got := dedupEnv(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("dedupEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestConcurrentStarts: starts from several goroutines at once, while another goroutine
// keeps the garbage collector busy, all run their program with the environment they
// were given (a fork taken during a collection or beside another fork is still whole).
func TestConcurrentStarts(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			keep = append(keep, make([]byte, 64<<10))
			if len(keep) > 64 {
				keep = keep[:0]
				runtime.GC()
			}
		}
	}()
	const goroutines, each = 4, 25
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		go func() {
			for i := range each {
				a := sh(`test "$SPAWN_N" = "$1" && test "$LISTEN_PID" = "$$"`, fmt.Sprint(g*each+i))
				a.Env = append(a.Env, fmt.Sprintf("SPAWN_N=%d", g*each+i))
				a.ListenPID = true
				a.Files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
				p, _, err := Start(a)
				if err != nil {
					errs <- err
					continue
				}
				st, err := p.Wait()
				if err == nil && !st.Success() {
					err = fmt.Errorf("start %d: %v", g*each+i, st)
				}
				errs <- err
			}
		}()
	}
	for range goroutines * each {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
