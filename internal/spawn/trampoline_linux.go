//go:build linux && (spawn_fallback || !(amd64 || arm64 || riscv64 || loong64 || ppc64le))

package spawn

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// init turns a start of the binary as a trampoline (argv[0] trampolineArg0, set only by
// the fallback's Start) into the trampoline, before the program's main and the init of
// any package that imports this one: no config, no logging, no flags. It never returns.
// Whoever else starts the binary that way gets a trampoline that reads a plan from fd
// argv[1] with the rights they already have, and exits 127 without one.
func init() {
	if len(os.Args) == 2 && os.Args[0] == trampolineArg0 {
		syscall.Exit(trampoline(os.Args[1]))
	}
}

// trampoline reads the plan from fd arg, sets this process up as the fast path's child
// does, and execs the program. On a failure it writes a failure record on the fd (a
// journal step's is a warning, and it goes on) and returns the exit status.
func trampoline(arg string) int {
	// The parent-death signal and the signal mask set below are this thread's, the one
	// that execs: the program keeps them.
	runtime.LockOSThread()
	fd, err := strconv.Atoi(arg)
	if err != nil || fd < 0 {
		return 127
	}
	syscall.CloseOnExec(fd)
	t := &tramp{fd: fd}
	msg, err := readAll(fd)
	if err != nil {
		return t.fail(stepTrampoline, err)
	}
	p, err := decodePlan(msg)
	if err != nil {
		return t.fail(stepTrampoline, syscall.EINVAL)
	}

	if p.cred {
		if !p.noSetGroups {
			groups := make([]int, len(p.groups))
			for i, g := range p.groups {
				groups[i] = int(g)
			}
			if err := syscall.Setgroups(groups); err != nil {
				return t.fail(stepSetgroups, err)
			}
		}
		if err := syscall.Setgid(int(p.gid)); err != nil {
			return t.fail(stepSetgid, err)
		}
		if err := syscall.Setuid(int(p.uid)); err != nil {
			return t.fail(stepSetuid, err)
		}
	}
	if p.dir != "" {
		if err := syscall.Chdir(p.dir); err != nil {
			return t.fail(stepChdir, err)
		}
	}
	// Files[i] is fd i already (ForkExec placed them) and the socket is close-on-exec;
	// below 3, a number no File took is one the Go runtime may have opened on /dev/null
	// at start (it does when 0, 1 or 2 is closed): not the program's.
	for i := fd; i < 3; i++ {
		syscall.CloseOnExec(i)
	}
	if p.journal {
		t.journal(p)
	}
	if p.nofile {
		// syscall.Setrlimit also tells syscall.Exec not to put back the limit this
		// process started with.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: p.nofileCur, Max: p.nofileMax}); err != nil {
			return t.fail(stepRlimit, err)
		}
	}
	env := p.env
	for _, pre := range p.pidVars {
		env = append(env, pre+strconv.Itoa(syscall.Getpid()))
	}

	// From here on, only what the exec needs: the dispositions the program starts with,
	// an empty mask on this thread (a signal pending for the process is then delivered
	// here, at the program's disposition), the parent-death signal after the credentials
	// (changing them clears it), the exec.
	t.report(stepExecBegin, 0)
	if err := setDispositions(p.ignore); err != nil {
		return t.fail(stepSignals, err)
	}
	var empty unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		return t.fail(stepSignals, err)
	}
	if p.pdeathsig != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(p.pdeathsig), 0, 0, 0); err != nil {
			return t.fail(stepPdeathsig, err)
		}
		if uint64(syscall.Getppid()) != p.ppid {
			// The parent died before the signal was armed.
			syscall.Kill(syscall.Getpid(), syscall.Signal(p.pdeathsig))
		}
	}
	err = syscall.Exec(p.path, p.args, env)
	return t.fail(stepExec, err)
}

// tramp is the trampoline's end of the socket to Start.
type tramp struct{ fd int }

// report writes a failure record; Start reads it (collect).
func (t *tramp) report(step uintptr, errno syscall.Errno) {
	f := failure{step: step, errno: uintptr(errno)}
	sendAll(t.fd, (*[unsafe.Sizeof(f)]byte)(unsafe.Pointer(&f))[:])
}

// fail reports the step that failed and returns the exit status, 127, as the fast path's
// child exits.
func (t *tramp) fail(step uintptr, err error) int {
	t.report(step, errnoOf(err))
	return 127
}

func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EINVAL
}

// journal connects the stream of Attr.Journal as the fast path's child does, best effort:
// a step that fails is reported as a warning, and fd 1 and 2 stay as they are.
func (t *tramp) journal(p *plan) {
	step := uintptr(stepJournalSocket)
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err == nil {
		step = stepJournalConnect
		err = unix.Connect(s, &unix.SockaddrUnix{Name: p.journalSocket})
		if err == nil {
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, journalSndbuf)
			step = stepJournalHeader
			var n int
			n, err = unix.SendmsgN(s, []byte(p.journalHeader), nil, nil, unix.MSG_NOSIGNAL)
			if err == nil && n != len(p.journalHeader) {
				err = syscall.EAGAIN // a short send on a new connection: the buffer is full
			}
		}
		if err == nil {
			step = stepJournalSetup
			err = unix.SetNonblock(s, false)
			if err == nil {
				err = unix.Shutdown(s, unix.SHUT_RD)
			}
			if err == nil && p.journalStdout {
				err = unix.Dup3(s, 1, 0)
			}
			if err == nil && p.journalStderr {
				err = unix.Dup3(s, 2, 0)
			}
		}
		unix.Close(s)
	}
	if err != nil {
		t.report(step, errnoOf(err))
	}
}

// setDispositions sets every signal but SIGKILL and SIGSTOP to SIG_DFL, and those of
// ignore to SIG_IGN, with rt_sigaction(2) itself: os/signal cannot give back SIG_DFL to a
// signal this process started with ignored. A number the kernel refuses is skipped.
func setDispositions(ignore []uint64) error {
	for sig := uint64(1); sig <= maxSignalArch; sig++ {
		if sig == uint64(syscall.SIGKILL) || sig == uint64(syscall.SIGSTOP) {
			continue
		}
		ign := false
		for _, s := range ignore {
			ign = ign || s == sig
		}
		var act kernelSigaction
		if ign {
			act[sigactionHandler] = 1 // SIG_IGN
		}
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, sigsetSize, 0, 0)
		if errno != 0 && ign {
			return errno
		}
	}
	return nil
}

// The kernel's struct sigaction, all zero but the handler: on MIPS the flags come first
// (an int, the handler aligned after it) and a sigset_t holds 128 signals; elsewhere the
// handler comes first and a sigset_t holds 64.
type kernelSigaction [8]uintptr

var sigactionHandler, sigsetSize, maxSignalArch = sigactionLayout()

// sigactionLayout returns the index of the handler in kernelSigaction, the size of a
// sigset_t and the highest signal number. A package variable's initializer, so that it
// runs before init, which may be the trampoline.
func sigactionLayout() (handler int, setSize uintptr, maxSig uint64) {
	switch runtime.GOARCH {
	case "mips", "mipsle", "mips64", "mips64le":
		return 1, 16, 127
	}
	return 0, 8, 64
}

// readAll reads fd to end-of-file.
func readAll(fd int) ([]byte, error) {
	var b []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("read", err)
		}
		if n == 0 {
			return b, nil
		}
		b = append(b, buf[:n]...)
	}
}
