package fdstore

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// The mode and owner of a unix socket file (issue 8).
//
// A worker that can write the socket's directory can replace the socket
// file by anything, a symlink to /etc/shadow included, at any time. So the
// package never chmods or chowns a socket file through its path. It opens
// the path with O_PATH|O_NOFOLLOW, checks that what it got is a socket and
// the very file the listener's socket is bound to, and changes that fd's
// file (fchownat and fchmodat with AT_EMPTY_PATH, or /proc/self/fd/N);
// anything else is refused with ErrNotBoundFile and left as it is.
//
// The file bound to a socket is the kernel's to tell: sock_diag(7) with
// UNIX_DIAG_VFS gives its inode and device for any unix socket, whoever
// bound it. That covers the listeners that come back from the FD store or
// from an old master, which know nothing else: the FD store keeps no more
// than a name per fd, so recording the inode in the Send/Receive wire
// format would have covered upgrades but not restarts, and old and new
// masters would have had to speak two versions. Once verified, the file's
// st_dev and st_ino are recorded in the Listener, and later checks compare
// all 64 bits of them.
//
// Open binds with the umask 0777&^Mode, on a thread of its own that has its
// own umask (unshare(CLONE_FS)) and ends after bind: the file is born with
// its mode, never wider, and the process umask is never touched. This
// needs no sock_diag; the owner and group, and a mode a default ACL
// changed, are then set as on reuse, before listen(2), so nobody connects
// before they are right. The obvious alternative, binding in a private
// directory and renaming the file into place, does not work: the kernel
// keeps the path given to bind(2) as the socket's address, and getsockname
// (Listener.Addr, on this side and after a handoff) and every client's
// getpeername would show the temporary path.
//
// Only what differs from what was last set is changed: a reload that keeps
// Mode, Owner and Group touches nothing. For a listener that came from the
// FD store or an old master, what was set is not known: its file is
// checked, and changed only if it differs.

// perms is what a Spec asks of a unix socket file, as written.
type perms struct {
	mode         os.FileMode
	owner, group string
}

func permsOf(s Spec) perms { return perms{s.Mode, s.Owner, s.Group} }

// sockFile is what a Listener knows of the unix socket file its socket is
// bound to.
type sockFile struct {
	// dev and ino are the file's st_dev and st_ino, once checked to be the
	// file the socket is bound to; ino 0 is not known yet.
	dev, ino uint64
	// applied is what was last set on the file, or found on it; nil is not
	// known.
	applied *perms
}

// lookupID turns a user or group name, or a numeric id, into an id; "" is
// -1 (leave unchanged).
func lookupID(kind, name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if id, err := strconv.ParseUint(name, 10, 31); err == nil {
		return int(id), nil
	}
	var id string
	if kind == "user" {
		u, err := user.Lookup(name)
		if err != nil {
			return -1, err
		}
		id = u.Uid
	} else {
		g, err := user.LookupGroup(name)
		if err != nil {
			return -1, err
		}
		id = g.Gid
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		return -1, fmt.Errorf("%s %q has non-numeric id %q", kind, name, id)
	}
	return n, nil
}

// removeSocketFile removes path if it is a socket file, as a clean-up after
// a failure; anything else there is left alone.
func removeSocketFile(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == os.ModeSocket {
		os.Remove(path)
	}
}
