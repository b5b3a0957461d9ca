//go:build linux

package main

import (
	"log/slog"
	"time"

	"github.com/baton-supervisor/baton/sdnotify"
)

// startWatchdog sends WATCHDOG=1 every half of the watchdog interval its service manager
// (baton's [worker] watchdog, or systemd's WatchdogSec=) gave it in WATCHDOG_USEC, for this
// process (WATCHDOG_PID), until stop is called. Without a watchdog it does nothing. The
// pings come from a goroutine of their own: they prove the process runs and is scheduled
// (a SIGSTOPped or wedged process sends none), not that every request is answered.
func startWatchdog(n *sdnotify.Notifier, log *slog.Logger) (stop func()) {
	d, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("watchdog ignored", "err", err)
	}
	if d <= 0 || n == nil {
		return func() {}
	}
	log.Info("watchdog", "interval", d)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d / 2)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := n.Notify(sdnotify.Watchdog); err != nil {
					log.Warn("cannot ping the watchdog", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
