//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/baton-supervisor/baton/sdnotify"
)

// The workers' notify socket (their $NOTIFY_SOCKET) is a unix datagram socket file in a
// directory the master makes for itself, so that only the master's user and the workers
// can reach it: an abstract socket has no permissions, and any local user could flood it.
//
//	$TMPDIR/baton-notify-XXXXXXXX/   0711 master's uid: entered by anyone, listed by no one
//	    master/notify                0700: where the socket is bound
//	    <gid>/notify                 0710 master's uid, group gid: one per workers' group,
//	                                 a hard link to the same socket
//
// A worker gets the path in the directory of the group it runs as (its worker.group, or
// its worker.user's group, or the master's), so a reload that changes worker.user does
// not take the socket from the old workers. The socket file itself is 0666: the
// directories are what keep others out. Under the shipped units $TMPDIR is unset and
// /tmp is the unit's own (PrivateTmp=yes). The master still drops any datagram whose
// kernel-checked sender is not one of its workers (onNotify).
type notifySock struct {
	*sdnotify.Server
	dir   string            // the directory; removed by Close
	paths map[uint32]string // gid → the socket's path for workers of that group
}

// openNotify makes the directory in tmp and binds the socket in it.
func openNotify(tmp string) (_ *notifySock, err error) {
	dir, err := os.MkdirTemp(tmp, "baton-notify-")
	if err != nil {
		return nil, fmt.Errorf("worker notify socket: %w", err)
	}
	n := &notifySock{dir: dir, paths: map[uint32]string{}}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	bound := filepath.Join(dir, "master")
	if err := os.Mkdir(bound, 0o700); err != nil {
		return nil, fmt.Errorf("worker notify socket: %w", err)
	}
	if n.Server, err = sdnotify.Listen(filepath.Join(bound, "notify")); err != nil {
		return nil, err
	}
	// Only through the directories below: master/ is 0700, each <gid>/ 0710.
	if err := os.Chmod(n.Server.Addr(), 0o666); err != nil {
		return nil, fmt.Errorf("worker notify socket: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, fmt.Errorf("worker notify socket: %w", err)
	}
	return n, nil
}

// addrFor returns the NOTIFY_SOCKET for workers running as group gid, making its
// directory the first time.
func (n *notifySock) addrFor(gid uint32) (string, error) {
	if p, ok := n.paths[gid]; ok {
		return p, nil
	}
	d := filepath.Join(n.dir, strconv.FormatUint(uint64(gid), 10))
	p := filepath.Join(d, "notify")
	// Made 0700 and opened to the group only once the link is in: nobody else ever
	// sees a half-made directory.
	err := os.Mkdir(d, 0o700)
	if err == nil {
		err = os.Link(n.Server.Addr(), p)
	}
	if err == nil {
		err = os.Chown(d, -1, int(gid))
	}
	if err == nil {
		err = os.Chmod(d, 0o710)
	}
	if err != nil {
		os.RemoveAll(d)
		return "", fmt.Errorf("worker notify socket for group %d: %w", gid, err)
	}
	n.paths[gid] = p
	return p, nil
}

// Close closes the socket and removes the directory. Safe to call more than once.
func (n *notifySock) Close() error {
	var errs []error
	if n.Server != nil {
		errs = append(errs, n.Server.Close())
	}
	if n.dir != "" {
		errs = append(errs, os.RemoveAll(n.dir))
		n.dir = ""
	}
	return errors.Join(errs...)
}

// notifyGid is the group a pool's workers run as.
func (p *pool) notifyGid() uint32 {
	if p.cred != nil {
		return p.cred.Gid
	}
	return uint32(os.Getgid())
}
