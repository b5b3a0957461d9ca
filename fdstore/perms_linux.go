//go:build linux

package fdstore

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// bindUnix binds the unix socket fd to path. With mode set it binds on a
// thread of its own with its own umask, 0777&^mode, so that the file is
// born with mode (or narrower, under a default ACL); the process umask is
// untouched. If the thread cannot have its own umask (unshare refused, by
// a seccomp filter say), bind runs under the process umask and the mode is
// left to planPerms.
func bindUnix(fd int, path string, mode os.FileMode) error {
	sa := &unix.SockaddrUnix{Name: path}
	if mode == 0 {
		return os.NewSyscallError("bind", unix.Bind(fd, sa))
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			runtime.UnlockOSThread() // the thread is as it was
			done <- unix.Bind(fd, sa)
			return
		}
		// Never unlocked: the thread, with its umask, ends with this
		// goroutine. (The runtime starts no thread from a locked one.)
		unix.Umask(int(0o777 &^ mode))
		done <- unix.Bind(fd, sa)
	}()
	return os.NewSyscallError("bind", <-done)
}

// permChange is a change of a unix socket file's mode and owner, checked
// and ready (planPerms), to be made (apply) or dropped (close).
type permChange struct {
	path     string
	pfd      int // O_PATH fd of the socket's own file; -1 once closed
	dev, ino uint64
	mode     uint32 // 0: keep
	uid, gid int    // -1: keep
	want     perms
	sf       *sockFile
}

// planPerms prepares setting the Mode, Owner and Group of s on the file at
// s.Address that the unix socket sock is bound to, where sf records what
// is known of it. It returns nil, nil when there is nothing to change:
// what sf says was applied is s's, or s sets nothing, or the file already
// has what s asks. Otherwise the file must be a socket and the one sock is
// bound to, else the error wraps ErrNotBoundFile, or the sock_diag error
// when the kernel cannot tell; nothing is changed then.
func planPerms(sock int, s Spec, sf *sockFile) (*permChange, error) {
	want := permsOf(s)
	if sf.applied != nil && *sf.applied == want {
		return nil, nil
	}
	if want == (perms{}) {
		sf.applied = &want
		return nil, nil
	}
	uid, err := lookupID("user", s.Owner)
	if err != nil {
		return nil, err
	}
	gid, err := lookupID("group", s.Group)
	if err != nil {
		return nil, err
	}
	path := s.Address
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket file: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	c := &permChange{path: path, pfd: pfd, mode: uint32(s.Mode), uid: uid, gid: gid, want: want, sf: sf}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		c.close()
		return nil, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		c.close()
		return nil, fmt.Errorf("a %s found there (replaced since bind), not changing its mode or owner: %w",
			typeName(st.Mode), ErrNotBoundFile)
	}
	if c.mode == st.Mode&0o7777 {
		c.mode = 0
	}
	if c.uid == int(st.Uid) {
		c.uid = -1
	}
	if c.gid == int(st.Gid) {
		c.gid = -1
	}
	if c.mode == 0 && c.uid == -1 && c.gid == -1 {
		c.close()
		sf.applied = &want
		return nil, nil
	}
	if err := checkBound(sock, pfd, &st, sf); err != nil {
		c.close()
		return nil, err
	}
	c.dev, c.ino = uint64(st.Dev), st.Ino // Dev is a uint32 on mips*
	return c, nil
}

// reusePerms is planPerms for the socket of l, reused for s.
func (l *Listener) reusePerms(s Spec) (c *permChange, err error) {
	rc, err := l.File.SyscallConn()
	if err != nil {
		return nil, err
	}
	if cerr := rc.Control(func(fd uintptr) { c, err = planPerms(int(fd), s, &l.sock) }); cerr != nil {
		return nil, cerr
	}
	return c, err
}

// checkBound returns nil if the file at pfd, with stat st, is the one the
// unix socket sock is bound to: the one recorded in sf, or else the one
// the kernel names (sock_diag), which is then recorded.
func checkBound(sock, pfd int, st *unix.Stat_t, sf *sockFile) error {
	if sf.ino != 0 {
		if uint64(st.Dev) != sf.dev || st.Ino != sf.ino {
			return fmt.Errorf("another socket file found there (inode %d, the listener's is %d; replaced since bind), not changing its mode or owner: %w",
				st.Ino, sf.ino, ErrNotBoundFile)
		}
		return nil
	}
	ino, dev, err := askBound(sock)
	if err != nil {
		return fmt.Errorf("cannot tell whether the socket file there is the listener's (that takes the kernel's sock_diag for unix sockets, CONFIG_UNIX_DIAG), not changing its mode or owner: %w", err)
	}
	if uint32(st.Ino) != ino || !onDevice(pfd, uint64(st.Dev), dev) {
		return fmt.Errorf("another socket file found there (inode %d on %d:%d, the listener's is %d on %d:%d; replaced since bind), not changing its mode or owner: %w",
			st.Ino, unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), ino, unix.Major(dev), unix.Minor(dev), ErrNotBoundFile)
	}
	sf.dev, sf.ino = uint64(st.Dev), st.Ino
	return nil
}

// askBound is boundFile; tests replace it to see a kernel without sock_diag.
var askBound = boundFile

// apply makes the change, owner first (a chown may clear mode bits), and
// records it. It closes c.
func (c *permChange) apply() error {
	defer c.close()
	if c.uid != -1 || c.gid != -1 {
		if err := unix.Fchownat(c.pfd, "", c.uid, c.gid, unix.AT_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "chown", Path: c.path, Err: err}
		}
	}
	if c.mode != 0 {
		if err := chmodFD(c.pfd, c.mode); err != nil {
			return &os.PathError{Op: "chmod", Path: c.path, Err: err}
		}
	}
	c.sf.dev, c.sf.ino = c.dev, c.ino
	c.sf.applied = &c.want
	return nil
}

// close drops c without changing anything. Safe to call twice.
func (c *permChange) close() {
	if c != nil && c.pfd >= 0 {
		unix.Close(c.pfd)
		c.pfd = -1
	}
}

// chmodFD sets the mode of the file of the O_PATH fd pfd: fchmodat2 with
// AT_EMPTY_PATH (Linux 6.6), else chmod of /proc/self/fd/N, which names
// that very file whatever its path has become.
func chmodFD(pfd int, mode uint32) error {
	err := unix.Fchmodat(pfd, "", mode, unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL {
		err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(pfd), mode)
	}
	return err
}

// typeName names the file type of a st_mode for errors.
func typeName(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFIFO:
		return "named pipe"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	}
	return "file of type " + strconv.FormatUint(uint64(m&unix.S_IFMT), 8)
}
