//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseOnExecFrom marks every open fd from first up close-on-exec. A master calls it first
// thing: fds it inherited by accident (a shell's, a test runner's) must not reach workers,
// and the ones it inherited on purpose (LISTEN_FDS, the upgrade socket) are passed on
// explicitly. It uses close_range(2) and falls back to /proc/self/fd on older kernels.
func CloseOnExecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	ents, derr := os.ReadDir("/proc/self/fd")
	if derr != nil {
		return fmt.Errorf("close-on-exec: %v; %w", err, derr)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd) // the directory's own fd is gone by now: EBADF, harmless
	}
	return nil
}
