//go:build linux && !spawn_fallback && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package spawn

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"
	"unsafe"
)

// The runtime's fork hooks, as package syscall uses them: BeforeFork blocks every signal on
// this thread and poisons the stack guard (a stack growth in the child would crash it
// instead of corrupting memory); AfterFork undoes both in the parent; AfterForkInChild
// resets every signal the runtime handles to SIG_DFL and restores the thread's signal mask.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// prepared is everything the child needs, built before the fork: the child only reads it,
// and writes to pidBufs and failure, its own copies.
type prepared struct {
	path    *byte
	argv    []*byte  // nil-terminated
	envv    []*byte  // nil-terminated
	dir     *byte    // nil: stay
	pidBufs [][]byte // "LISTEN_PID=", "WATCHDOG_PID=", each with room for the digits and a NUL
	pidPre  []int    // the length of each one's "NAME="
	fds     []int
	nextfd  int // above every fd in fds and the pipe

	reset     []uintptr // every other signal that can be caught or ignored
	ignore    []uintptr
	sigDfl    [4]uint64 // a kernel struct sigaction with sa_handler = SIG_DFL: all zero
	sigIgn    [4]uint64 // the same with sa_handler = SIG_IGN
	emptyMask uint64

	setpgid   bool
	cred      *syscall.Credential
	groups    uintptr // &cred.Groups[0] or 0
	pdeathsig uintptr
	ppid      uintptr
	nofile    *syscall.Rlimit

	journal       bool // Attr.Journal: the rest of these are set
	journalAddr   syscall.RawSockaddrUnix
	journalLen    uintptr // of the address: the family, the path and its NUL
	journalHeader []byte
	journalStdout bool
	journalStderr bool
	journalSndbuf int32

	failure failure
	warning failure
}

// Start forks and execs the program a describes, and returns once it runs (or with the
// error that kept it from running; the child is then reaped). The caller must Wait for the
// process. Start holds syscall.ForkLock across the fork, as os/exec does.
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
		return nil, nil, errors.New("spawn: no argv")
	}
	p := &prepared{setpgid: a.Setpgid, cred: a.Credential, pdeathsig: uintptr(a.Pdeathsig), nofile: a.Nofile}
	if p.path, err = syscall.BytePtrFromString(path); err != nil {
		return nil, nil, fmt.Errorf("spawn: %q: %w", path, err)
	}
	if p.argv, err = cStrings(a.Args); err != nil {
		return nil, nil, fmt.Errorf("spawn: argv: %w", err)
	}
	prefixes := a.pidPrefixes()
	env := withoutPrefixes(dedupEnv(a.Env), prefixes)
	if p.envv, err = cStrings(env); err != nil {
		return nil, nil, fmt.Errorf("spawn: environment: %w", err)
	}
	for _, pre := range prefixes {
		buf := make([]byte, len(pre)+21) // 20 digits and a NUL
		copy(buf, pre)
		p.pidBufs = append(p.pidBufs, buf)
		p.pidPre = append(p.pidPre, len(pre))
		last := len(p.envv) - 1 // the terminating nil
		p.envv = append(p.envv[:last], &buf[0], nil)
	}
	if a.Dir != "" {
		if p.dir, err = syscall.BytePtrFromString(a.Dir); err != nil {
			return nil, nil, fmt.Errorf("spawn: dir: %w", err)
		}
	}
	for _, sig := range a.Ignore {
		p.ignore = append(p.ignore, uintptr(sig))
	}
	for sig := uintptr(1); sig <= maxSignal; sig++ {
		if sig != uintptr(syscall.SIGKILL) && sig != uintptr(syscall.SIGSTOP) && !slices.Contains(p.ignore, sig) {
			p.reset = append(p.reset, sig)
		}
	}
	p.sigIgn[0] = 1 // SIG_IGN
	if a.Credential != nil && len(a.Credential.Groups) > 0 {
		p.groups = uintptr(unsafe.Pointer(&a.Credential.Groups[0]))
	}
	if a.Journal != nil && (a.Journal.Stdout || a.Journal.Stderr) {
		if err := p.prepareJournal(a.Journal); err != nil {
			return nil, nil, err
		}
	}
	p.fds = make([]int, len(a.Files))
	p.nextfd = len(a.Files)
	for i, f := range a.Files {
		p.fds[i] = int(f.Fd())
		p.nextfd = max(p.nextfd, p.fds[i]+1)
	}

	var pipe [2]int
	syscall.ForkLock.Lock()
	err = syscall.Pipe2(pipe[:], syscall.O_CLOEXEC)
	if err != nil {
		syscall.ForkLock.Unlock()
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	p.nextfd = max(p.nextfd, pipe[0]+1, pipe[1]+1)
	if p.pdeathsig != 0 {
		// PR_SET_PDEATHSIG follows the thread that forked: keep it for the whole call.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		p.ppid = uintptr(syscall.Getpid())
	}
	pid, errno := forkExec(p, pipe[1])
	syscall.ForkLock.Unlock()
	syscall.Close(pipe[1])
	runtime.KeepAlive(a)
	runtime.KeepAlive(p)
	if errno != 0 {
		syscall.Close(pipe[0])
		return nil, nil, os.NewSyscallError("fork", errno)
	}

	return collect(pipe[0], int(pid), path, false)
}

// prepareJournal builds what the child needs to connect its journal stream: the address
// and the header, so that the child only makes system calls.
func (p *prepared) prepareJournal(j *Journal) error {
	hdr, err := journalHeader(j)
	if err != nil {
		return err
	}
	if len(journalSocket) >= len(p.journalAddr.Path) {
		return fmt.Errorf("spawn: journal socket %q: path too long", journalSocket)
	}
	p.journalAddr.Family = syscall.AF_UNIX
	for i := 0; i < len(journalSocket); i++ {
		p.journalAddr.Path[i] = int8(journalSocket[i])
	}
	p.journalLen = unsafe.Offsetof(p.journalAddr.Path) + uintptr(len(journalSocket)) + 1
	p.journalHeader = hdr
	p.journalStdout, p.journalStderr = j.Stdout, j.Stderr
	p.journalSndbuf = journalSndbuf
	p.journal = true
	return nil
}

// forkExec forks; the child sets itself up from p and execs, or writes a failure record to
// pipe and exits 127. It returns the child's pid in the parent.
//
// Everything after the fork runs in the child with the stack guard poisoned and memory
// shared with nothing: only raw system calls, no allocation, no function that could grow
// the stack, no write of a pointer. Every variable is declared before the fork.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkExec(p *prepared, pipe int) (pid uintptr, errno syscall.Errno) {
	var (
		err1   syscall.Errno
		i      int
		fd     int
		nextfd int
		mypid  uintptr
		digits int
		v      uintptr
		jfd    uintptr
		b      int
		n      int
	)
	nextfd = p.nextfd

	runtimeBeforeFork()
	pid, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 || pid != 0 {
		runtimeAfterFork()
		return pid, errno
	}

	// In the child.
	if p.setpgid {
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0); err1 != 0 {
			p.failure.step = stepSetpgid
			goto fail
		}
	}

	// Handlers back to SIG_DFL, then the mask of the forking thread (the caller may have
	// blocked the signals it ignores below, so that none arrives at its default action
	// first); ignoring a signal discards it if pending; then an empty mask. The runtime
	// resets only the signals it handles: one this process was started with ignored
	// (say, by a shell or a CI runner) would stay ignored, so every other signal is set to
	// SIG_DFL too, as systemd does for a service. A number the kernel refuses is skipped.
	runtimeAfterForkInChild()
	for i = 0; i < len(p.reset); i++ {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, p.reset[i], uintptr(unsafe.Pointer(&p.sigDfl)), 0, 8, 0, 0)
	}
	for i = 0; i < len(p.ignore); i++ {
		if _, _, err1 = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, p.ignore[i], uintptr(unsafe.Pointer(&p.sigIgn)), 0, 8, 0, 0); err1 != 0 {
			p.failure.step = stepSignals
			goto fail
		}
	}
	if _, _, err1 = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 2 /* SIG_SETMASK */, uintptr(unsafe.Pointer(&p.emptyMask)), 0, 8, 0, 0); err1 != 0 {
		p.failure.step = stepSignals
		goto fail
	}

	if p.cred != nil {
		if !p.cred.NoSetGroups {
			if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(p.cred.Groups)), p.groups, 0); err1 != 0 {
				p.failure.step = stepSetgroups
				goto fail
			}
		}
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETGID, uintptr(p.cred.Gid), 0, 0); err1 != 0 {
			p.failure.step = stepSetgid
			goto fail
		}
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETUID, uintptr(p.cred.Uid), 0, 0); err1 != 0 {
			p.failure.step = stepSetuid
			goto fail
		}
	}

	if p.dir != nil {
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.dir)), 0, 0); err1 != 0 {
			p.failure.step = stepChdir
			goto fail
		}
	}

	// After the credentials: changing them clears the parent-death signal.
	if p.pdeathsig != 0 {
		if _, _, err1 = syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, p.pdeathsig, 0, 0, 0, 0); err1 != 0 {
			p.failure.step = stepPdeathsig
			goto fail
		}
		if v, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); v != p.ppid {
			// The parent died before the signal was armed.
			mypid, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
			syscall.RawSyscall(syscall.SYS_KILL, mypid, p.pdeathsig, 0)
		}
	}

	// Files[i] becomes fd i. First move the pipe and every fd[i] < i above the range, so
	// that no dup onto a low number closes one still to be placed; then dup each into place
	// (dup3 without O_CLOEXEC), or clear close-on-exec where it is in place already.
	if pipe < len(p.fds) {
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(pipe), uintptr(nextfd), syscall.O_CLOEXEC); err1 != 0 {
			p.failure.step = stepFiles
			goto fail
		}
		pipe = nextfd
		nextfd++
	}
	for i = 0; i < len(p.fds); i++ {
		if p.fds[i] < i {
			if _, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.fds[i]), uintptr(nextfd), syscall.O_CLOEXEC); err1 != 0 {
				p.failure.step = stepFiles
				goto fail
			}
			p.fds[i] = nextfd
			nextfd++
		}
	}
	for i = 0; i < len(p.fds); i++ {
		fd = p.fds[i]
		if fd == i {
			_, _, err1 = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0)
		} else {
			_, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(fd), uintptr(i), 0)
		}
		if err1 != 0 {
			p.failure.step = stepFiles
			goto fail
		}
	}

	// The journal stream, after the credentials (journald records the uid that connects)
	// and once fds 0.. are in place (the socket takes a number above them). Best effort:
	// fd 1 and 2 change only once the stream is ready; a failed step is reported as a
	// warning and the program runs with the Files it was given. The connect is
	// non-blocking: a journald that does not accept (a full backlog) fails it with EAGAIN
	// rather than holding the start. The header is sent with MSG_NOSIGNAL: a journald
	// that closed the connection must not kill the child with SIGPIPE before it execs.
	if p.journal {
		p.warning.step = stepJournalSocket
		jfd, _, err1 = syscall.RawSyscall(syscall.SYS_SOCKET, syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
		if err1 == 0 {
			p.warning.step = stepJournalConnect
			_, _, err1 = syscall.RawSyscall(syscall.SYS_CONNECT, jfd, uintptr(unsafe.Pointer(&p.journalAddr)), p.journalLen)
		}
		if err1 == 0 {
			syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, jfd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, uintptr(unsafe.Pointer(&p.journalSndbuf)), 4, 0)
			p.warning.step = stepJournalHeader
			v, _, err1 = syscall.RawSyscall6(syscall.SYS_SENDTO, jfd, uintptr(unsafe.Pointer(&p.journalHeader[0])), uintptr(len(p.journalHeader)), syscall.MSG_NOSIGNAL, 0, 0)
			if err1 == 0 && v != uintptr(len(p.journalHeader)) {
				err1 = syscall.EAGAIN // a short send on a new connection: the buffer is full
			}
		}
		if err1 == 0 {
			// Blocking again, as a stream from systemd is: a program whose stdout is
			// non-blocking fails with EAGAIN where it expects to wait. journald never
			// reads from the child: its end is shut for reading.
			p.warning.step = stepJournalSetup
			_, _, err1 = syscall.RawSyscall(syscall.SYS_FCNTL, jfd, syscall.F_SETFL, 0)
			if err1 == 0 {
				_, _, err1 = syscall.RawSyscall(syscall.SYS_SHUTDOWN, jfd, syscall.SHUT_RD, 0)
			}
			if err1 == 0 && p.journalStdout {
				_, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, jfd, 1, 0)
			}
			if err1 == 0 && p.journalStderr {
				_, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, jfd, 2, 0)
			}
		}
		if p.warning.step != stepJournalSocket { // the socket is open
			syscall.RawSyscall(syscall.SYS_CLOSE, jfd, 0, 0)
		}
		if err1 != 0 {
			p.warning.errno = uintptr(err1)
			syscall.RawSyscall(syscall.SYS_WRITE, uintptr(pipe), uintptr(unsafe.Pointer(&p.warning)), unsafe.Sizeof(p.warning))
			err1 = 0
		}
	}

	if p.nofile != nil {
		if _, _, err1 = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, syscall.RLIMIT_NOFILE, uintptr(unsafe.Pointer(p.nofile)), 0, 0, 0); err1 != 0 {
			p.failure.step = stepRlimit
			goto fail
		}
	}

	// LISTEN_PID=<pid>, WATCHDOG_PID=<pid>, written into this process's own copy of the
	// buffers.
	if len(p.pidBufs) > 0 {
		mypid, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		digits = 1
		for v = mypid; v >= 10; v /= 10 {
			digits++
		}
		for b = 0; b < len(p.pidBufs); b++ {
			i = p.pidPre[b] + digits
			p.pidBufs[b][i] = 0
			for v, n = mypid, digits; n > 0; n-- {
				i--
				p.pidBufs[b][i] = byte('0' + v%10)
				v /= 10
			}
		}
	}

	_, _, err1 = syscall.RawSyscall(syscall.SYS_EXECVE,
		uintptr(unsafe.Pointer(p.path)),
		uintptr(unsafe.Pointer(&p.argv[0])),
		uintptr(unsafe.Pointer(&p.envv[0])))
	p.failure.step = stepExec

fail:
	p.failure.errno = uintptr(err1)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(pipe), uintptr(unsafe.Pointer(&p.failure)), unsafe.Sizeof(p.failure))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
