// Package logging is baton's log output: one *slog.Logger, chosen once by
// main, that writes to journald's native protocol when stderr is the
// journal, syslog-prefixed text lines when stderr is a pipe or a file, and
// plain text lines on a terminal.
//
// Invariants:
//
//   - New decides once, from stderr alone: Journal when $JOURNAL_STREAM
//     names stderr's device and inode and journald's socket exists, Text on
//     a terminal, Prefixed otherwise. The choice never changes afterwards.
//   - Logging never blocks its caller: lines for stderr are written by a
//     goroutine of the logger's, up to 1024 waiting; a line that finds them
//     all waiting (the reader of a pipe is stopped or slow) is dropped and
//     counted, and the count is logged once stderr takes lines again. Flush
//     waits for the lines still waiting, before a program exits.
//   - A line journald does not take (it is gone, the send fails or would
//     block) is written to stderr in the Prefixed form instead.
//   - Each line is one datagram (Journal) or one write(2) (Prefixed, Text):
//     lines from concurrent goroutines never interleave, and lines up to
//     PIPE_BUF bytes never interleave with the workers' on a shared pipe.
//     Every handler is safe for concurrent use and supports WithAttrs and
//     WithGroup; a disabled level costs a level comparison and no allocation.
//   - The logger owns the one descriptor it opens (Journal: a close-on-exec
//     datagram socket). It logs nothing about itself and changes no
//     environment variable.
//
// # Journal entries
//
// Each record becomes one entry with these fields:
//
//	MESSAGE            the message, then " key=value" for each attribute, as
//	                   in the text form (groups joined with '.'), so plain
//	                   journalctl output loses nothing
//	PRIORITY           7 below Info, 6 below Warn, 4 below Error, 3 from Error
//	SYSLOG_IDENTIFIER  baton
//	MESSAGE_ID         for a known "event" attribute outside any group (below)
//	BATON_<KEY>        one per attribute: groups and key joined with '_',
//	                   upper-cased, every rune outside [A-Z0-9_] made '_',
//	                   cut to 64 bytes ("generation" is BATON_GENERATION,
//	                   "worker" BATON_WORKER, group "req" key "id" BATON_REQ_ID)
//
// A value holding a newline is sent in the protocol's binary form (name,
// newline, 64-bit little-endian length, value, newline); an entry too large
// for one datagram is sent in a sealed memfd. Query with, for example,
// journalctl -u baton.service BATON_EVENT=worker-crashed, or
// journalctl MESSAGE_ID=34cd23173dc043c9933778f622718be5.
//
// # MESSAGE_ID table
//
// The value of the "event" attribute sets MESSAGE_ID; the ids are fixed
// (constants MessageIDUpgradeStarted and so on, or MessageID(event)):
//
//	event                MESSAGE_ID
//	upgrade-started      b5733bf465974866a4896ba80643f411
//	upgrade-committed    73322ab9d63245698debbbdd0b55672b
//	upgrade-rolled-back  bed4e2b7c40d42cc9291e1b085198673
//	upgrade-failed       ff9b4b2fe17841e1937b733982ecd7dc
//	reload-started       d971b272c3b14177bd57cb16003f8794
//	reload-ok            26d1d1c48ad147aaa7fa201e78134046
//	reload-failed        527370a9b4984b409ccd80abc1ac9fa5
//	worker-crashed       34cd23173dc043c9933778f622718be5
//	ready                fdb23e8b48634ef5b0b8e45a164ff044
//	stopping             57367b0fd3f7486d90a5b84cf60d7a6d
//	probation-failed     174da87b6ff64e878dfc7bdf5f4f2c33
//
// Any other "event" value is still logged as BATON_EVENT, without
// MESSAGE_ID.
//
// The stream rule is in systemd.exec(5) ($JOURNAL_STREAM):
// https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html
// the native protocol in https://systemd.io/JOURNAL_NATIVE_PROTOCOL/, the
// "<N>" prefixes in sd-daemon(3):
// https://www.freedesktop.org/software/systemd/man/latest/sd-daemon.html
package logging
