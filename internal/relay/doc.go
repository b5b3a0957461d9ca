// Package relay gives a supervisor's children a standard output and error that stay
// writable for as long as the supervisor runs, when the supervisor's own are a pipe or a
// socket whose reader may go away (`baton run | tee log`, a process supervisor's pipe).
//
// Without it a child shares the supervisor's fd 1 and 2. When their reader exits, the next
// write to them fails with EPIPE and raises SIGPIPE, whose default action kills the writer:
// every worker of a program we did not write, at its next log line. With it, each child
// gets a pipe of its own per stream, whose read end the supervisor holds, and the
// supervisor copies what arrives to its own stdout or stderr, or discards it once that
// sink is gone. The children keep their signal dispositions; nothing they write fails.
//
// Which streams are relayed is decided once, by New, from what the supervisor's own fd is:
//
//   - a pipe (FIFO) or a socket, the only kinds whose reader can go away: relayed;
//   - the journal stream $JOURNAL_STREAM names ("<device>:<inode>", systemd.exec(5)):
//     passed as it is; journald keeps its stream connections across its own restarts, and
//     a relay would put the supervisor in the path of every byte for nothing. Journal
//     reports it, so that the caller may give the child a stream of its own instead
//     (internal/spawn's Attr.Journal);
//   - anything else (a regular file, a terminal, /dev/null): passed as it is; none of them
//     fails with EPIPE.
//
// Invariants:
//
//   - Every fd has one owner. The Relay owns the read ends, its epoll instance and eventfd,
//     and a close-on-exec duplicate of each sink (never the process's fd 1 or 2 themselves,
//     which it neither closes nor changes: a new master started with them gets the
//     original sinks). An Output owns the write ends until it is closed, after the child
//     has started; from then on the child (and what it forks) holds the only copies, so a
//     stream ends when the child and its descendants are gone.
//   - Every descriptor is close-on-exec; a child gets a write end only as its fd 1 or 2,
//     blocking, as a pipe from a shell is.
//   - A child never blocks on a sink that is gone: after EPIPE (or ECONNRESET) on a sink,
//     the relay reads and discards. A sink that is there but slow slows the children, as a
//     shared pipe would.
//   - Stdout and stderr stay distinct: each child stream is copied to the sink it replaces.
//   - Lines: a child's complete lines reach the sink in writes that end at a line end and
//     are at most PIPE_BUF (4096) bytes, unless one line is longer, so on a pipe sink no
//     other writer (the master's own log lines, another master's relay during an upgrade,
//     another process) can land inside a line of up to PIPE_BUF bytes, and no two children
//     of one relay mix within a line. A line a child writes in several pieces is assembled
//     before it is copied, up to MaxLine bytes and for at most FlushAfter after its first
//     piece; past either, or at the end of the stream, the piece goes out as it is.
//   - Cost: one goroutine copies every stream; it is parked while no child writes. A
//     line after a quiet spell is copied at once; while lines keep coming they are read
//     in batches, after a pause (at most Coalesce) that adapts so that no pipe fills, so
//     that a steady writer costs about one wake-up per Coalesce, not one per line. Lines
//     are delayed by at most Coalesce.
//   - The package logs nothing.
//
// See pipe(7) (PIPE_BUF, EPIPE), signal(7) (SIGPIPE), systemd.exec(5) ($JOURNAL_STREAM),
// sd_journal_stream_fd(3).
package relay
