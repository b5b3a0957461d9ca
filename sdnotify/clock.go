//go:build linux

package sdnotify

import (
	"time"

	"golang.org/x/sys/unix"
)

// MonotonicNow returns MonotonicUsec of the current CLOCK_MONOTONIC time,
// the value Type=notify-reload wants with Reloading. It panics only if the
// kernel has no CLOCK_MONOTONIC, which Linux always has.
func MonotonicNow() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("sdnotify: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return MonotonicUsec(time.Duration(ts.Nano()))
}
