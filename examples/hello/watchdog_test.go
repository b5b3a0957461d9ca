//go:build linux

package main

import (
	"syscall"
	"testing"
)

// TestWatchdogPings: with WATCHDOG_USEC (and no WATCHDOG_PID, or its own), hello sends
// WATCHDOG=1 after READY=1, again and again, until it stops; with another process's
// WATCHDOG_PID it sends none (the variables were not meant for it).
func TestWatchdogPings(t *testing.T) {
	ln, f := listenTCP(t)
	defer ln.Close()
	p := start(t, spec{files: []passed{{"http", f}}, env: []string{"WATCHDOG_USEC=200000"}})
	p.expectNotify(t, "READY=1")
	for range 3 {
		p.expectNotify(t, "WATCHDOG=1")
	}
	p.signal(t, syscall.SIGTERM)
	p.wait(t)

	ln2, f2 := listenTCP(t)
	defer ln2.Close()
	p = start(t, spec{files: []passed{{"http", f2}}, env: []string{"WATCHDOG_USEC=200000", "WATCHDOG_PID=1"}})
	p.expectNotify(t, "READY=1")
	p.signal(t, syscall.SIGTERM)
	p.expectNotify(t, "STOPPING=1")
	p.wait(t)
	p.expectNoNotify(t)
}
