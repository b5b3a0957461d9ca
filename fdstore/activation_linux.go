//go:build linux

package fdstore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Activation takes the listeners passed by socket activation and the FD
// store (sd_listen_fds(3)): fds 3 to 3+LISTEN_FDS-1, named by
// LISTEN_FDNAMES ("unknown" each when it is unset, as systemd does), in the
// order passed. All are Source Activated; the caller re-labels Opened the
// ones it knows it put into the FD store.
//
// It returns nil, nil when nothing was passed to this process: LISTEN_PID
// unset or another process's pid, LISTEN_FDS unset or 0. A malformed
// variable, a name count that does not match, or a passed fd that is not
// open gives an error wrapping ErrActivationEnv or the syscall error.
//
// On success the returned listeners own the fds, each with close-on-exec
// set. On error no fd is wrapped or closed (some may already have
// close-on-exec set). With unsetEnv, LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES are removed from the environment in every case, so neither
// a second call nor a child sees them. Call it once, early: later code may
// reuse fd numbers from 3.
func Activation(unsetEnv bool) ([]*Listener, error) {
	if unsetEnv {
		defer func() {
			os.Unsetenv(envPID)
			os.Unsetenv(envFDs)
			os.Unsetenv(envNames)
		}()
	}
	var env listenEnv
	env.pid, env.pidSet = os.LookupEnv(envPID)
	env.fds = os.Getenv(envFDs)
	env.names, env.namesSet = os.LookupEnv(envNames)
	names, err := parseListenEnv(env, os.Getpid())
	if err != nil || len(names) == 0 {
		return nil, err
	}

	type described struct{ network, addr string }
	infos := make([]described, len(names))
	for i, name := range names {
		fd := listenFDsStart + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, fmt.Errorf("fdstore: %s=%d: fd %d (%q): %w", envFDs, len(names), fd, name, os.NewSyscallError("fcntl F_SETFD", err))
		}
		network, addr, err := describe(fd)
		if err != nil {
			return nil, fmt.Errorf("fdstore: activation fd %d (%q): %w", fd, name, err)
		}
		infos[i] = described{network, addr}
	}
	ls := make([]*Listener, len(names))
	for i, name := range names {
		fd := listenFDsStart + i
		ls[i] = &Listener{
			Name:    name,
			Source:  Activated,
			File:    os.NewFile(uintptr(fd), name),
			Network: infos[i].network,
			Addr:    infos[i].addr,
		}
	}
	return ls, nil
}
