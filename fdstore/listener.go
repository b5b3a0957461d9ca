package fdstore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Errors returned by this package, for errors.Is. A unix socket path that
// something still accepts on gives syscall.EADDRINUSE.
var (
	// ErrInvalidSpec: a Spec or listener name is not acceptable.
	ErrInvalidSpec = errors.New("invalid listener spec")
	// ErrActivationEnv: LISTEN_PID, LISTEN_FDS or LISTEN_FDNAMES is malformed.
	ErrActivationEnv = errors.New("malformed socket activation environment")
	// ErrTransfer: the peer of Receive did not follow the Send protocol.
	ErrTransfer = errors.New("malformed listener transfer")
	// ErrNotSocket: a unix socket path is taken by a file that is not a
	// socket. Open never removes such a file.
	ErrNotSocket = errors.New("file in the way is not a socket, not removing it")
	// ErrNotBoundFile: the path of a unix socket no longer holds the file
	// the listener's socket is bound to (something replaced it: a symlink,
	// a regular file, another socket). Its mode and owner are not changed.
	ErrNotBoundFile = errors.New("not the socket file the listener is bound to")
)

// Source says where a Listener came from, and so who else holds its socket.
// The zero value is not a valid Source.
type Source int

const (
	// Activated: the fd came through LISTEN_FDS. If it belongs to a socket
	// unit, systemd holds its own copy: never put it into the FD store.
	// Activation labels FD store fds Activated too; the caller, knowing
	// which names it stored, re-labels those Opened. (Not named Activation:
	// that is the function.)
	Activated Source = iota + 1
	// Opened: baton opened the socket itself from its config. It belongs in
	// the FD store and may come back from it through LISTEN_FDS.
	Opened
)

// String returns "activated", "opened", or "Source(n)" for invalid values.
func (s Source) String() string {
	switch s {
	case Activated:
		return "activated"
	case Opened:
		return "opened"
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

func (s Source) valid() bool { return s == Activated || s == Opened }

// Listener is one named socket. Whoever holds the Listener owns File and
// must Close it (or hand it on). File has close-on-exec set.
type Listener struct {
	Name   string
	Source Source
	File   *os.File

	// Network and Addr describe the socket as the kernel reports it
	// (SO_DOMAIN, SO_TYPE, getsockname): Network is "tcp" or "udp" (IPv4
	// and IPv6 alike), "unix", "unixgram" or "unixpacket"; Addr is
	// "127.0.0.1:8080", "[::1]:8080", "/run/x.sock", "@abstract", or ""
	// for an unbound unix socket. Both are "" for an fd that is not an
	// inet or unix socket (the FD store may hold anything).
	Network string
	Addr    string

	// sock is what Open and Resolve know of a unix socket's file: which
	// file it is, what mode and owner they set on it.
	sock sockFile
}

// Close closes l.File. It returns nil for a nil Listener or File, and the
// error of os.File.Close otherwise (os.ErrClosed the second time).
func (l *Listener) Close() error {
	if l == nil || l.File == nil {
		return nil
	}
	return l.File.Close()
}

// String describes l for logs: `web (tcp 127.0.0.1:8080, opened)`.
func (l *Listener) String() string {
	if l == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s (%s %s, %s)", l.Name, l.Network, l.Addr, l.Source)
}

// Names joins the names of ls with ':' in order, the value for
// LISTEN_FDNAMES: "a:b:b".
func Names(ls []*Listener) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, ":")
}

// Files returns the File of each listener in order, for exec.Cmd.ExtraFiles
// (fd 3 onwards, matching Names). The listeners still own the files.
func Files(ls []*Listener) []*os.File {
	files := make([]*os.File, len(ls))
	for i, l := range ls {
		files[i] = l.File
	}
	return files
}

// ValidName reports whether name may name a listener baton opens: 1 to 255
// characters from A-Z a-z 0-9 _ . - (':' separates names in
// LISTEN_FDNAMES). The error wraps ErrInvalidSpec.
func ValidName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("fdstore: %w: name %q: want 1 to %d characters", ErrInvalidSpec, name, maxNameLen)
	}
	for _, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '-'
		if !ok {
			return fmt.Errorf("fdstore: %w: name %q: character %q not allowed, use A-Z a-z 0-9 _ . -",
				ErrInvalidSpec, name, c)
		}
	}
	return nil
}

// maxNameLen is systemd's FDNAME_MAX.
const maxNameLen = 255

// validFDName reports whether systemd would accept name as a file
// descriptor name (FileDescriptorName=, FDNAME=): 1 to 255 printable ASCII
// characters other than ':'. Names from systemd and from another master are
// checked against this looser rule, so that any socket unit is accepted.
func validFDName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for _, c := range []byte(name) {
		if c < ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}
