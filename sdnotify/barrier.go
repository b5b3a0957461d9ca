//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Barrier sends BARRIER=1 and waits until the receiver has processed every
// message this process sent before it, like sd_notify_barrier(3): it sends
// the write end of a fresh pipe with the message, closes its own copy, and
// waits for the pipe to hang up, which happens when the receiver closes the
// copy it got. Send MAINPID= and then Barrier before exiting, or the service
// manager may read MAINPID= after it has seen the old main process die.
//
// Barrier returns nil on hang-up. If none comes within timeout it returns an
// error wrapping os.ErrDeadlineExceeded; a timeout ≤ 0 waits without limit.
// Only the calling goroutine's thread blocks.
func (n *Notifier) Barrier(timeout time.Duration) error {
	if n == nil {
		return nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("sdnotify: barrier %q: %w", n.addr, os.NewSyscallError("pipe2", err))
	}
	r, w := p[0], p[1]
	defer unix.Close(r)
	err := n.NotifyWithFDs([]int{w}, BarrierMsg)
	unix.Close(w)
	if err != nil {
		return err
	}
	if err := waitHangup(r, timeout); err != nil {
		return fmt.Errorf("sdnotify: barrier %q: %w", n.addr, err)
	}
	return nil
}

// waitHangup polls fd, the read end of a pipe, until every write end is
// closed (POLLHUP) or timeout (≤ 0: none) has passed. It asks for no events:
// POLLHUP is always reported, and data written into the pipe is not an
// answer.
func waitHangup(fd int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ms := -1
		if timeout > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("no answer within %v: %w", timeout, os.ErrDeadlineExceeded)
			}
			ms = int(min((left+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
		}
		pfd := []unix.PollFd{{Fd: int32(fd)}}
		_, err := unix.Poll(pfd, ms)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return os.NewSyscallError("poll", err)
		case pfd[0].Revents&unix.POLLHUP != 0:
			return nil
		case pfd[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0:
			return fmt.Errorf("poll: revents %#x", pfd[0].Revents)
		}
	}
}
