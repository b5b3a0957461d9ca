// Package fdstore owns baton's named listening sockets: it takes them from
// socket activation and systemd's file descriptor store (both arrive through
// LISTEN_FDS), opens the ones the config asks for, merges the two by name
// (Resolve), and passes them to a new master over a unix socket during a hot
// upgrade (Send, Receive).
//
// Invariants:
//
//   - Listeners are found by name, never by position: systemd does not keep
//     the order of a socket unit's fds stable. Several listeners may share a
//     name (a socket unit with two ListenStream= lines gives two fds named
//     alike); their relative order is kept everywhere.
//   - Every fd has exactly one owner, whoever holds the *Listener. Every fd
//     this package opens, wraps or receives has close-on-exec set; a child
//     inherits a listener only when its owner passes it explicitly.
//   - Source says who else holds a socket: an Activated listener from a
//     socket unit is also held by systemd and must never be put into the FD
//     store; an Opened listener is baton's own and belongs in the store.
//   - The package never removes a file that is not a socket, nor a socket
//     that something still accepts on. It logs nothing.
//   - It never chmods or chowns a unix socket file through its path, which
//     a worker that can write the directory may have swapped for a symlink:
//     only through an O_PATH fd checked to be the very file the listener's
//     socket is bound to (see perms.go). A socket file is born with its
//     mode.
//
// See sd_listen_fds(3), sd_pid_notify_with_fds(3) (FDSTORE=1, FDNAME=),
// systemd.socket(5) (FileDescriptorName=) and unix(7) (SCM_RIGHTS).
package fdstore
