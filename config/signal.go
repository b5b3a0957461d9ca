package config

import (
	"fmt"
	"strings"
	"syscall"
)

// stopSignals are the signals worker.stop_signal may name, by name without
// the SIG prefix. USR2 and WINCH are not among them: baton starts workers with
// both ignored (so that `systemctl kill -s USR2 UNIT`, which reaches the whole
// cgroup, does not hurt workers that keep that disposition; servers that install
// their own handler, gunicorn's arbiter, still receive it), and an ignored stop
// signal would only mean a SIGKILL after stop_timeout.
var stopSignals = []struct {
	name string
	sig  syscall.Signal
}{
	{"TERM", syscall.SIGTERM},
	{"QUIT", syscall.SIGQUIT},
	{"INT", syscall.SIGINT},
	{"HUP", syscall.SIGHUP},
	{"USR1", syscall.SIGUSR1},
	{"KILL", syscall.SIGKILL},
}

// parseSignal parses a stop signal name: "TERM" or "SIGTERM", in any case.
// It accepts TERM, QUIT, INT, HUP, USR1 and KILL.
func parseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for _, ss := range stopSignals {
		if ss.name == name {
			return ss.sig, nil
		}
	}
	return 0, fmt.Errorf("must be one of %s (got %q)", signalNames(), s)
}

// signalName returns "SIGTERM" for syscall.SIGTERM, or "" for a signal
// stop_signal cannot name.
func signalName(sig syscall.Signal) string {
	for _, ss := range stopSignals {
		if ss.sig == sig {
			return "SIG" + ss.name
		}
	}
	return ""
}

func signalNames() string {
	names := make([]string, len(stopSignals))
	for i, ss := range stopSignals {
		names[i] = ss.name
	}
	return strings.Join(names, ", ")
}
