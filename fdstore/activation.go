package fdstore

import (
	"fmt"
	"strconv"
	"strings"
)

// The socket activation environment, sd_listen_fds(3).
const (
	envPID   = "LISTEN_PID"
	envFDs   = "LISTEN_FDS"
	envNames = "LISTEN_FDNAMES"

	// listenFDsStart is SD_LISTEN_FDS_START, the first passed fd.
	listenFDsStart = 3
	// maxListenFDs bounds LISTEN_FDS, far above what systemd passes
	// (FileDescriptorStoreMax= plus a socket unit's fds).
	maxListenFDs = 1 << 16
)

// listenEnv is the activation environment as read; set tells an unset
// LISTEN_FDNAMES from an empty one.
type listenEnv struct {
	pid, fds, names  string
	pidSet, namesSet bool
}

// parseListenEnv checks env as sd_listen_fds_with_names does and returns
// one name per passed fd, in order; nil when nothing is passed to process
// pid (LISTEN_PID unset or another pid, LISTEN_FDS unset or 0). Names
// default to "unknown" when LISTEN_FDNAMES is unset. Errors wrap
// ErrActivationEnv.
func parseListenEnv(env listenEnv, pid int) ([]string, error) {
	if !env.pidSet {
		return nil, nil
	}
	p, err := strconv.Atoi(env.pid)
	if err != nil || p <= 0 {
		return nil, fmt.Errorf("fdstore: %w: %s=%q is not a process id", ErrActivationEnv, envPID, env.pid)
	}
	if p != pid || env.fds == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(env.fds)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, fmt.Errorf("fdstore: %w: %s=%q is not a count from 0 to %d", ErrActivationEnv, envFDs, env.fds, maxListenFDs)
	}
	if n == 0 {
		if env.names != "" {
			return nil, fmt.Errorf("fdstore: %w: %s=%q names fds but %s=0", ErrActivationEnv, envNames, env.names, envFDs)
		}
		return nil, nil
	}
	names := make([]string, n)
	if !env.namesSet {
		for i := range names {
			names[i] = "unknown" // as systemd does
		}
		return names, nil
	}
	got := strings.Split(env.names, ":")
	if len(got) != n {
		return nil, fmt.Errorf("fdstore: %w: %s has %d names for %s=%d", ErrActivationEnv, envNames, len(got), envFDs, n)
	}
	for i, name := range got {
		if !validFDName(name) {
			return nil, fmt.Errorf("fdstore: %w: %s: name %d (%q) is not a valid fd name", ErrActivationEnv, envNames, i+1, name)
		}
		names[i] = name
	}
	return names, nil
}
