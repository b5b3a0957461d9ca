//go:build linux

package main

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// stopTimeoutEnv names the drain deadline baton gives each worker: its stop_timeout, in
// seconds, a decimal number ("30", "1.5"), counted from the stop signal. After it the
// worker gets SIGKILL.
const stopTimeoutEnv = "BATON_STOP_TIMEOUT"

// maxStopTimeout bounds what fitStopTimeout takes from the environment: past it (a century)
// a value is more likely a mistake than a deadline, and would overflow a time.Duration.
const maxStopTimeout = 100 * 365 * 24 * time.Hour

// fitStopTimeout fits the drain into the deadline env gives (BATON_STOP_TIMEOUT), for the
// flags the command line did not set; a flag given always wins. Of the deadline T:
//
//   - a tenth is kept back, for the exit itself and a machine under load;
//   - -drain, the window in which open connections get their next response with
//     Connection: close, is 1s (its default) or a tenth of T if less;
//   - -shutdown-timeout, the wait for requests in flight and first requests still to
//     come, is 10s (its default) or three tenths of T if less;
//   - -close-spread gets the rest: the idle keep-alive connections (long-lived clients
//     that send nothing, the ones that would all reconnect at once) are closed one at a
//     time over it, so they come back to the next generation gradually.
//
// With T = 30s that is 1s, 17s of spread, then at most 9s: hello is done by 27s. A bad
// value changes nothing and is reported.
func (c *config) fitStopTimeout(env string) error {
	secs, err := strconv.ParseFloat(env, 64)
	switch {
	case err != nil:
		return fmt.Errorf("%q: not a number of seconds", env)
	case math.IsNaN(secs) || secs <= 0 || secs > maxStopTimeout.Seconds():
		return fmt.Errorf("%q: must be more than 0 and at most %s", env, maxStopTimeout)
	}
	t := time.Duration(secs * float64(time.Second))
	drain, wait, spread := c.drain, c.shutdownTimeout, c.closeSpread
	if !c.set["drain"] {
		drain = min(time.Second, t/10)
	}
	if !c.set["shutdown-timeout"] {
		wait = min(10*time.Second, 3*t/10)
	}
	if !c.set["close-spread"] {
		spread = max(t-t/10-drain-wait, 0)
	}
	if wait <= 0 {
		return fmt.Errorf("%q: too short for any drain", env)
	}
	c.drain, c.shutdownTimeout, c.closeSpread = drain, wait, spread
	return nil
}
