package sdnotify

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadAddr is wrapped by Open and Listen for an address they cannot use.
var ErrBadAddr = errors.New("sdnotify: unusable notify socket address")

// maxAddr is the longest address that fits sockaddr_un.sun_path (108 bytes)
// with its terminating NUL; an abstract name uses the NUL's slot for '@'.
const maxAddr = 107

// checkAddr accepts what systemd puts in $NOTIFY_SOCKET for a unix socket:
// an absolute path, or '@' followed by an abstract name. AF_VSOCK addresses
// ("vsock:…", used for virtual machines) are not supported.
func checkAddr(addr string) error {
	switch {
	case addr == "":
		return fmt.Errorf("%w: empty", ErrBadAddr)
	case strings.HasPrefix(addr, "vsock"):
		return fmt.Errorf("%w: %q: AF_VSOCK is not supported", ErrBadAddr, addr)
	case addr[0] != '/' && addr[0] != '@':
		return fmt.Errorf("%w: %q: want an absolute path or '@' and an abstract name", ErrBadAddr, addr)
	case addr == "@":
		return fmt.Errorf("%w: %q: empty abstract name", ErrBadAddr, addr)
	case len(addr) > maxAddr:
		return fmt.Errorf("%w: %q: %d bytes, at most %d", ErrBadAddr, addr, len(addr), maxAddr)
	case strings.IndexByte(addr, 0) >= 0:
		return fmt.Errorf("%w: %q: NUL byte", ErrBadAddr, addr)
	}
	return nil
}
