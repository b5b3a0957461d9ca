// Package sdnotify is the sd_notify protocol on both ends: a client that
// sends state to the service manager (READY=1, STATUS=, file descriptors for
// the FD store, barriers) and a server that plays the service manager for a
// master's own workers.
//
// Invariants:
//
//   - A nil *Notifier is a no-op: every method returns nil (Addr returns ""),
//     so code running off systemd needs no if.
//   - The client opens one unconnected, close-on-exec datagram socket and
//     addresses every message to $NOTIFY_SOCKET again, so a service manager
//     that re-binds its socket (daemon-reexec) is still reached. It never
//     unsets $NOTIFY_SOCKET: the caller decides what its children inherit.
//   - File descriptors passed to NotifyWithFDs stay owned by the caller; the
//     kernel gives the receiver its own copies.
//   - The server owns every descriptor that reaches it: it reads with
//     MSG_CMSG_CLOEXEC and closes each one that arrives by SCM_RIGHTS, so a
//     worker cannot leak descriptors into the master. It reports only how
//     many there were.
//   - The server never half-parses: a truncated datagram or truncated control
//     data is rejected with ErrTruncated, a message without sender
//     credentials with ErrNoCredentials, and text that is not KEY=VALUE lines
//     with ErrMalformed.
//   - This package logs nothing.
//
// The protocol is described in sd_notify(3):
// https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html
// and the BARRIER=1 handshake in sd_notify_barrier(3).
package sdnotify
