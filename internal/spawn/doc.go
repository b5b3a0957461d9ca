// Package spawn starts a program the way a supervisor written in C does: fork, set the child
// up with raw system calls, exec. It exists for the two things os/exec cannot do between fork
// and exec, which every baton worker needs:
//
//   - LISTEN_PID: sd_listen_fds(3) takes the inherited sockets only when LISTEN_PID is the
//     process's own pid, which is known only after the fork. The child writes its pid into
//     the environment it execs with.
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
// Guarantees:
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
// See fork(2), execve(2), sd_listen_fds(3), signal(7), prctl(2) (PR_SET_PDEATHSIG).
package spawn
