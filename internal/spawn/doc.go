// Package spawn starts a program the way a supervisor written in C does: fork, set the child
// up with raw system calls, exec. It exists for the two things os/exec cannot do between fork
// and exec, which every baton worker needs:
//
//   - LISTEN_PID: sd_listen_fds(3) takes the inherited sockets only when LISTEN_PID is the
//     process's own pid, which is known only after the fork. The child writes its pid into
//     the environment it execs with (and into WATCHDOG_PID, for sd_watchdog_enabled(3)).
//   - Ignored signals: `systemctl kill -s USR2` signals every process of the unit. A worker
//     starts with USR2 and WINCH ignored (SIG_IGN survives execve), so the default action
//     does not kill it; a program that wants them installs its own handler.
//   - A journal stream of its own (Attr.Journal): journald records a stream's lines under
//     the pid that connected it (SO_PEERCRED), so the child connects, before it execs.
//
// Before this package, a re-exec of baton's own binary (an "exec shim") did both in the
// child: one Go program start more per worker, about 2.5 ms of CPU on the machine the
// benchmark ran on.
//
// Guarantees (see below for the fallback, where the fork of the fast path is not built):
//   - The child starts with an empty signal mask, every signal at its default action except
//     those in Attr.Ignore, the original soft RLIMIT_NOFILE (see OriginalNofile), and exactly
//     the fds of Attr.Files open (fd i is Files[i]); every other fd of the parent is
//     close-on-exec, as Go opens them and as baton marks what it inherits.
//   - Start returns only once the child has exec'd the program, or with the error that kept
//     it from doing so (the child is then reaped): an exec failure is the caller's error, not
//     a crash to be found later.
//   - Between fork and exec the child makes raw system calls only: it does not allocate,
//     grow its stack, or run Go code that could take a lock another thread held at fork.
//
// The fork uses the runtime hooks package syscall uses for os/exec (syscall.runtime_BeforeFork
// and its two companions), which the Go runtime keeps for outside callers (go.dev/issue/67401).
// It is a plain fork, not vfork: the child has its own copy of memory, so nothing it writes
// reaches the parent.
//
// # The fallback: a trampoline
//
// The raw fork above is built for amd64, arm64, riscv64, loong64 and ppc64le. On every other
// architecture Go supports on Linux (386, arm, mips, mipsle, mips64, mips64le, ppc64, s390x),
// and with the build tag spawn_fallback (`go test -tags spawn_fallback ./internal/spawn` runs
// the same tests against it on amd64), Start is the fallback, chosen at build time:
//
//  1. Start resolves Attr into a plan (fallback_linux.go, plan_linux.go) and starts
//     /proc/self/exe, the binary this process runs as the kernel holds it (one replaced on
//     disk since, by an upgrade, is not the one started), with syscall.ForkExec, which Go
//     implements on every architecture: argv[0] "baton-spawn-trampoline", the Files at fd
//     0.., a socket at the next fd, an empty environment, Setpgid, and every signal it can
//     block blocked.
//  2. The binary's init in this package sees argv[0] and becomes the trampoline, before any
//     main: it reads the plan, then does what the fast path's child does (credentials,
//     chdir, the journal stream, RLIMIT_NOFILE, LISTEN_PID=its own pid), then the
//     dispositions, an empty mask and the parent-death signal on the thread that execs,
//     then syscall.Exec. Each failure is a record on the socket, which is close-on-exec.
//  3. Start reads the socket to end-of-file, as it reads the fast path's pipe.
//
// The guarantees above hold, with these differences:
//   - The child runs Go code between fork and exec: a program of its own, started fresh by
//     execve, so no lock of this process is held in it. About one Go program start more
//     per worker (the 2.5 ms of CPU of the former exec shim).
//   - A signal sent to the child in those milliseconds: those the Go runtime leaves blocked
//     wait, then take the program's disposition (ignored: discarded); HUP, INT and TERM
//     kill it, as their default action does; QUIT, ABRT, SYS, ILL, TRAP, STKFLT, BUS, FPE
//     and SEGV end it with exit status 2 and the runtime's report on its fd 2, not by the
//     signal; PROF is lost.
//   - It needs /proc mounted and the binary executable by the user baton runs as; every
//     program that links this package and calls Start can be the trampoline (its init).
//   - The trampoline reports it is about to exec before it does: a trampoline that ends
//     before that report (killed, or a binary that is not the trampoline) is Start's error
//     with its exit status; one killed after it is a program that started and ended.
//
// See fork(2), execve(2), sd_listen_fds(3), signal(7), prctl(2) (PR_SET_PDEATHSIG).
package spawn
