//go:build linux && (spawn_fallback || !(amd64 || arm64 || riscv64 || loong64 || ppc64le))

package spawn

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The fallback: where the fast path's raw fork is not built (or with the spawn_fallback
// build tag), Start starts this same binary again as a trampoline (trampoline_linux.go)
// with syscall.ForkExec, which Go implements on every architecture, sends it the plan,
// and the trampoline sets itself up as the fast path's child does and execs the program:
// the same pid, the same guarantees, one Go program start more per worker.

// trampolineExe is the binary the trampoline runs: this process's own, as the kernel
// holds it open. A binary replaced on disk since (an upgrade renames a new one over it)
// still starts the code of this process, which reads the plan this process writes.
const trampolineExe = "/proc/self/exe"

// trampolineArg0 is the argv[0] that makes a start of the binary a trampoline (see init in
// trampoline_linux.go); argv[1] is the number of the fd it reads the plan from.
const trampolineArg0 = "baton-spawn-trampoline"

// Start starts the program a describes, and returns once it runs (or with the error that
// kept it from running; the child is then reaped). The caller must Wait for the process.
//
// What it returns:
//   - proc, nil, nil: the program runs, as a asked.
//   - proc, warning, nil: the program runs without what a asked for as best effort only
//     (Attr.Journal); warning, an *Error, says which step failed and why.
//   - nil, nil, err: the program does not run; err is an *Error when the child failed.
func Start(a *Attr) (proc *os.Process, warning error, err error) {
	path, err := LookPath(a.Path, a.Env, a.Dir)
	if err != nil {
		return nil, nil, err
	}
	if len(a.Args) == 0 {
		return nil, nil, fmt.Errorf("spawn: no argv")
	}
	p, err := newPlan(a, path)
	if err != nil {
		return nil, nil, err
	}
	msg := p.encode()

	// One socket: the plan goes down (then SHUT_WR), the reports come up, and the
	// trampoline's end closes at its exec.
	sp, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	files := make([]uintptr, 0, len(a.Files)+1)
	for _, f := range a.Files {
		files = append(files, f.Fd())
	}
	files = append(files, uintptr(sp[1]))
	argv := []string{trampolineArg0, strconv.Itoa(len(a.Files))}

	// PR_SET_PDEATHSIG follows the thread that forked: keep it for the whole call, as the
	// fast path does.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := forkTrampoline(argv, files, a.Setpgid)
	syscall.Close(sp[1])
	runtime.KeepAlive(a)
	if err != nil {
		syscall.Close(sp[0])
		return nil, nil, fmt.Errorf("spawn: start the trampoline (%s): %w", trampolineExe, err)
	}
	// A trampoline that died does not read: the error shows in what collect reads.
	sendAll(sp[0], msg)
	syscall.Shutdown(sp[0], syscall.SHUT_WR)
	return collect(sp[0], pid, path, true)
}

// forkTrampoline starts the trampoline with every signal it can block blocked on the
// forking thread, so that the trampoline starts with them blocked: one that arrives
// before the trampoline has set the program's dispositions stays pending, then takes the
// action the program would (default, or discarded if ignored), instead of reaching the
// Go runtime's handlers, which ignore most. The runtime unblocks those it needs (HUP,
// INT, TERM, QUIT, the synchronous ones, its preemption signal); see doc.go.
func forkTrampoline(argv []string, files []uintptr, setpgid bool) (int, error) {
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return 0, os.NewSyscallError("pthread_sigmask", err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return syscall.ForkExec(trampolineExe, argv, &syscall.ProcAttr{
		Env:   []string{}, // the trampoline's runtime reads no GODEBUG, GOGC… of anyone's
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: setpgid},
	})
}

// sendAll writes b to the stream socket fd, without SIGPIPE if the peer is gone.
func sendAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_NOSIGNAL)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
