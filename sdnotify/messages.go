package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Messages without a parameter, as sd_notify(3) spells them. Pass several to
// Notify to send them in one datagram.
const (
	// Ready tells the service manager that start-up (or a reload) is finished.
	Ready = "READY=1"
	// Reloading starts a reload; send MonotonicNow with it (Type=notify-reload
	// needs MONOTONIC_USEC=) and Ready when the reload is done.
	Reloading = "RELOADING=1"
	// Stopping tells the service manager that the service is shutting down.
	Stopping = "STOPPING=1"
	// Watchdog keeps the watchdog from firing; see WatchdogInterval.
	Watchdog = "WATCHDOG=1"
	// WatchdogTrigger makes the service manager act as if the watchdog fired.
	WatchdogTrigger = "WATCHDOG=trigger"
	// FDStore stores the descriptors sent with NotifyWithFDs; add FDName.
	FDStore = "FDSTORE=1"
	// FDStoreRemove removes the stored descriptors named by FDName.
	FDStoreRemove = "FDSTOREREMOVE=1"
	// FDPollOff asks the service manager not to poll stored descriptors for
	// errors (sockets that may see POLLHUP/POLLERR while stored).
	FDPollOff = "FDPOLL=0"
	// BarrierMsg is the message Barrier sends with its pipe; use Barrier
	// rather than sending it by hand.
	BarrierMsg = "BARRIER=1"
)

// ErrInvalidFDName is returned by FDName for a name the service manager
// would refuse: empty, longer than 255 bytes, or with a byte outside
// printable ASCII or a ':' (the LISTEN_FDNAMES separator).
var ErrInvalidFDName = errors.New("sdnotify: invalid fd name")

// maxFDName is FDNAME_MAX in systemd.
const maxFDName = 255

// Status returns "STATUS=" + s, with every CR, LF and NUL replaced by a
// space, so s cannot end the line or inject another KEY=VALUE.
func Status(s string) string {
	flat := strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', 0:
			return ' '
		}
		return r
	}, s)
	return "STATUS=" + flat
}

// MainPID returns "MAINPID=<pid>": the service manager then treats pid as
// the service's main process.
func MainPID(pid int) string {
	return "MAINPID=" + strconv.Itoa(pid)
}

// MonotonicUsec returns "MONOTONIC_USEC=<now in µs>". now is a
// CLOCK_MONOTONIC reading; MonotonicNow takes one.
func MonotonicUsec(now time.Duration) string {
	return "MONOTONIC_USEC=" + strconv.FormatInt(now.Microseconds(), 10)
}

// ExtendTimeoutUsec returns "EXTEND_TIMEOUT_USEC=<d in µs>": the current
// start, stop or runtime timeout is extended to at least d from now. A
// negative d is sent as 0.
func ExtendTimeoutUsec(d time.Duration) string {
	return "EXTEND_TIMEOUT_USEC=" + usec(d)
}

// WatchdogUsec returns "WATCHDOG_USEC=<d in µs>", which changes the
// service's watchdog interval at run time. A negative d is sent as 0.
func WatchdogUsec(d time.Duration) string {
	return "WATCHDOG_USEC=" + usec(d)
}

func usec(d time.Duration) string {
	return strconv.FormatInt(max(d.Microseconds(), 0), 10)
}

// ErrInvalidUsec is wrapped by ParseUsec for a value that is not a number of
// microseconds.
var ErrInvalidUsec = errors.New("sdnotify: not a number of microseconds")

// maxUsec is the most microseconds a time.Duration holds.
const maxUsec = uint64(1<<63-1) / uint64(time.Microsecond)

// ParseUsec reads the value of WATCHDOG_USEC= or EXTEND_TIMEOUT_USEC= as a
// service manager must, from a sender it does not trust: decimal digits only
// (no sign, space or unit), at most 20 of them, and no more than a
// time.Duration holds; else an error wrapping ErrInvalidUsec. Zero is
// returned as 0: what it means is the caller's business.
func ParseUsec(s string) (time.Duration, error) {
	if s == "" || len(s) > 20 {
		return 0, fmt.Errorf("%w: %d bytes", ErrInvalidUsec, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrInvalidUsec, s)
		}
	}
	us, err := strconv.ParseUint(s, 10, 64)
	if err != nil || us > maxUsec {
		return 0, fmt.Errorf("%w: %q is out of range", ErrInvalidUsec, s)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// FDName returns "FDNAME=" + name, or an error wrapping ErrInvalidFDName if
// the service manager would refuse name (see ErrInvalidFDName). Names must
// be unique in the store: they are how baton finds its sockets again.
func FDName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidFDName)
	}
	if len(name) > maxFDName {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidFDName, len(name), maxFDName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < ' ' || c > '~' || c == ':' {
			return "", fmt.Errorf("%w: %q: byte %#x at %d", ErrInvalidFDName, name, c, i)
		}
	}
	return "FDNAME=" + name, nil
}

// WatchdogInterval reports the watchdog interval the service manager set for
// this process, like sd_watchdog_enabled(3) without unsetting anything:
//
//   - (0, nil): no watchdog: WATCHDOG_USEC is unset, or WATCHDOG_PID names
//     another process (the variables were inherited, not meant for us).
//   - (d, nil), d > 0: send Watchdog more often than every d (half is usual).
//   - (0, err): WATCHDOG_USEC or WATCHDOG_PID is not a positive integer.
func WatchdogInterval() (time.Duration, error) {
	s, ok := os.LookupEnv("WATCHDOG_USEC")
	if !ok {
		return 0, nil
	}
	d, err := ParseUsec(s)
	if err != nil || d == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive number of microseconds", s)
	}
	if p, ok := os.LookupEnv("WATCHDOG_PID"); ok {
		pid, err := strconv.ParseUint(p, 10, 31)
		if err != nil || pid == 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID=%q is not a process id", p)
		}
		if int(pid) != os.Getpid() {
			return 0, nil
		}
	}
	return d, nil
}
