//go:build linux

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// handleSignals sets this process's signal dispositions and returns the
// channel on which the first stop signal arrives.
//
// SIGHUP, SIGUSR1, SIGUSR2 and SIGWINCH are ignored: `systemctl kill -s SIG
// UNIT` signals every process of the unit, and Go's default for SIGHUP is to
// exit. SIGTERM, SIGINT and SIGQUIT are caught (Go's default for SIGQUIT is
// a stack dump and exit 2); each one asks for a graceful drain. They stay
// caught until the process exits, so a second one cannot cut the drain
// short.
func handleSignals() <-chan os.Signal {
	signal.Ignore(syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	return stop
}
