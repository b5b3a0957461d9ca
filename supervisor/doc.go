// Package supervisor is baton's master process: it holds the listening sockets, runs N
// workers of the user's command on them, and upgrades, reloads and rolls back without
// closing a listener, the way nginx's master does, for any server program.
//
// # Process model
//
// A master runs one generation of itself. It forks and execs each worker itself
// (internal/spawn), so that the worker gets its sockets with the systemd protocol:
// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID equal to the worker's own pid, and
// NOTIFY_SOCKET naming the master's own notify socket, never systemd's (a path in a
// directory only the master's user and the workers' groups can enter, notifydir.go);
// USR2 and WINCH start ignored, so a signal aimed at the whole service does not kill the
// workers. With [worker] watchdog, each worker also gets WATCHDOG_USEC and WATCHDOG_PID (its
// own pid) and the master watches it as systemd watches a service (watchdog.go).
//
// On SIGUSR2 the master (the old one, O) starts its binary again from the path it was
// started with, detached: the new master (N) is cloned with CLONE_PARENT, so it is a child of
// whatever started O (systemd, a subreaper, a shell), never of O. O hands N its listeners
// over an inherited socketpair; N starts its workers and reports ready; O then commits
// (retires its workers and exits) or, if N fails, rolls back.
//
// # State machine
//
// A master is always in one role: starting, serving, upgrading, soaking, committing,
// handing-over, rolling-back (an old master's upgrade), joining, awaiting-commit (a new
// master before its commit), stopping, exited. Every outside happening is an event (a
// signal, a worker's exit, a notify datagram, a timer, a control request, a message from
// the other master, a config read off the loop, systemd's answer to a hand-over), and
// Master.handle alone decides what it means in the current role; Master.become is the only
// place a role changes, along the arrows of STATES.md. Everything the master does to the
// world goes through the system interface, so the machine is tested without processes.
//
// # Probation
//
// A new generation is on trial before it replaces the old one, which serves beside it all
// along: a new master from its first pool's ready until its old master commits, a
// reload's new workers for reload.soak. A worker that exits, a worker's ERRNO=, or the
// [health] check failing check_failures times in a row fails it: the reload fails, the
// upgrade rolls back (probation.go, STATES.md).
//
// # Invariants
//
//   - Every master is a direct child of the service manager (or of whatever started the
//     first one); no master is another master's child.
//   - At most one upgrade is in flight; at most one generation is not ready.
//   - The old master stays in charge (pid file, and under systemd MainPID) until the upgrade
//     is committed; a new master that exits or is not ready in time changes nothing.
//   - One goroutine, Master.Run's loop, owns all state; every other goroutine (timers
//     included) only posts events to it, and nothing on the loop waits on a peer: config
//     parsing, the hand-over's barrier and control replies run elsewhere.
//   - A worker is a process group: stop signals and SIGKILL go to the group, and a worker
//     is reaped only once its group is empty (or killed), so its id never names anyone else.
//   - After MAINPID= names the new master, the old one never signals it.
//   - A commit either completes or is rolled back; nothing leaves both generations waiting.
//   - Every file descriptor has one owner. A worker holds its standard streams and the
//     listeners meant for it, nothing else.
//   - A reader of the master's stdout or stderr that goes away costs log lines, never the
//     service: the master survives EPIPE, and workers write to it through the master's
//     relay when it is a pipe or a socket (output.go, internal/relay).
//   - A bad config on SIGHUP keeps the old workers serving; new workers replace old ones
//     only once every new one is ready.
//   - Only the master in charge speaks to systemd and accepts on the control socket and
//     the metrics endpoint: a new master from its commit on, an old one until its
//     hand-over (MAINPID= and BARRIER=1). Scrapes read a snapshot the loop publishes after
//     each event (metrics.go); they never wait on the loop.
//   - Counters go up across upgrades: the old master's totals go to the new one with the
//     commit; a new master that is rolled back takes its counts with it.
//   - Every fork blocks USR2 and WINCH until the child handles them, so a signal aimed at
//     the whole service cannot kill a process forked in reaction to it.
//
// Signals follow nginx: HUP reload, USR2 upgrade, WINCH stop workers, QUIT graceful stop or
// commit, TERM/INT fast stop, USR1 reopen logs. See the README's signal table.
//
// See also: nginx(8) "Controlling nginx", sd_listen_fds(3), sd_notify(3),
// clone(2) CLONE_PARENT, pidfd_open(2).
package supervisor
