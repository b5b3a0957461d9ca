//go:build linux

package supervisor

import (
	"fmt"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/sdnotify"
)

// The per-worker watchdog, the way systemd watches a service (WatchdogSec=,
// sd_watchdog_enabled(3), sd_notify(3)): with [worker] watchdog on, each worker gets
// WATCHDOG_USEC and WATCHDOG_PID (its own pid, set between fork and exec as LISTEN_PID is),
// and must send WATCHDOG=1 more often than that. All of it runs on the master loop.
//
//   - The watchdog is armed when the worker becomes ready (READY=1, or at once with ready =
//     "started"). Before that its start timeout governs: a WATCHDOG=1 before READY=1 is
//     taken and does nothing. systemd arms it earlier, at the first ping of a service still
//     starting; one deadline per worker at a time keeps the machine simple, and a worker
//     that hangs while it starts is caught by start_timeout anyway.
//   - The armed watchdog is the worker's timer (worker.timer, kind tWorkerWatchdog): the
//     stop signal, an exit, a retire replace or disarm it as they do the start timeout, so
//     no watchdog outlives the readiness it watches.
//   - A worker that misses it, or sends WATCHDOG=trigger, fails: it gets its stop signal,
//     then SIGCONT (as systemd follows KillSignal= with it: a SIGSTOPped worker wakes to its
//     stop signal and drains what it had accepted), and SIGKILL after stop_timeout or its
//     watchdog interval, whichever is shorter; its exit then goes the way of every
//     failure (failed: restart with backoff, a failed reload, a new master's failed
//     start). A generation on probation fails at the miss itself, as at an ERRNO=.
//     systemd sends WatchdogSignal= (SIGABRT: a core dump) and SIGKILL after
//     TimeoutAbortSec= (TimeoutStopSec=); baton has no core-dump policy of its own and asks
//     with the signal the worker knows. A worker that could not say it was alive within
//     one interval is not trusted with a longer drain: its slot is down until it exits.
//   - WATCHDOG_USEC= changes the worker's own interval (as systemd lets a service), within
//     config.MinWatchdog..config.MaxWatchdog, and re-arms a ready worker's watchdog from
//     now. Zero (systemd: off) is refused: a worker cannot switch off what the operator
//     asked for. A worker may turn a watchdog on for itself when the config has none.
//   - EXTEND_TIMEOUT_USEC= from a starting worker moves its start deadline to now + the
//     value, but never before started + start_timeout (sd_notify(3): a timeout occurs only
//     beyond the original one), and never past started + maxStartStretch × start_timeout,
//     so that a worker cannot keep itself starting for ever. From a worker in any other
//     state it is ignored.
//
// Everything here comes from a datagram the worker controls: values are parsed strictly
// (sdnotify.ParseUsec), bounded, and a refusal is logged at a limited rate.

// maxStartStretch bounds EXTEND_TIMEOUT_USEC=: a starting worker's deadline is at most this
// many start_timeouts after it started (5 minutes with the default 30 s).
const maxStartStretch = 10

// watchdogInterval is w's watchdog: its own WATCHDOG_USEC= if it sent one, else the
// config's; 0: none.
func (w *worker) watchdogInterval() time.Duration {
	if w.watchdog > 0 {
		return w.watchdog
	}
	return w.pool.cfg.Watchdog
}

// armWatchdog (re)starts a ready worker's watchdog: its interval from now. Nothing for a
// worker that is not ready or has no watchdog.
func (m *Master) armWatchdog(w *worker) {
	d := w.watchdogInterval()
	if d <= 0 || w.state != workerReady {
		return
	}
	disarm(w.timer)
	w.timer = m.arm(&timer{kind: tWorkerWatchdog, d: d, w: w})
}

func (m *Master) onWatchdogTimeout(w *worker, t *timer) {
	if w.timer != t || w.state != workerReady {
		return
	}
	w.timer = nil
	m.watchdogFailed(w, fmt.Sprintf("watchdog timeout (no WATCHDOG=1 within %s)", t.d))
}

// watchdogFailed stops w as a failure: its stop signal, SIGCONT, SIGKILL after stop_timeout
// or its watchdog interval, whichever is shorter. Its exit is then a failure like any other.
func (m *Master) watchdogFailed(w *worker, reason string) {
	p := w.pool
	grace := p.cfg.StopTimeout
	if d := w.watchdogInterval(); d > 0 {
		grace = min(grace, d)
	}
	w.failReason = reason
	m.metrics.counts.WorkerWatchdogs++
	m.log.Warn("worker watchdog: stopping it", "worker", w.slot, "worker_pid", w.pid, "pool", p.id,
		"why", reason, "stop_signal", signalName(p.cfg.StopSignal), "kill_after", grace, "event", "worker-watchdog")
	if p == m.current {
		// Until the slot's next worker is ready: STATUS= and baton status say why it is down.
		m.setLastErr(fmt.Sprintf("worker %d (pid %d) %s", w.slot, w.pid, reason), w.slot)
	}
	m.stopWorker(w, p.cfg.StopSignal, grace)
	if p.cfg.StopSignal != syscall.SIGKILL {
		// As systemd follows its KillSignal= (systemd.kill(5)): a stopped process gets its
		// pending stop signal and drains, answering what it had accepted.
		m.sys.signalGroup(w, syscall.SIGCONT)
	}
	if pr := m.onProbation(p); pr != nil {
		// A generation on trial fails at the miss, as at an ERRNO=, rather than at the
		// exit: its stopping worker is no longer ready, so the trial cannot go on.
		m.failProbation(pr, fmt.Sprintf("worker %d (pid %d) %s during probation", w.slot, w.pid, reason))
	}
}

// notifyWatchdog takes the watchdog's fields of a datagram of w's (onNotify has taken
// STATUS= and READY=1 first): WATCHDOG_USEC=, then WATCHDOG=1 or WATCHDOG=trigger, and
// EXTEND_TIMEOUT_USEC=.
func (m *Master) notifyWatchdog(w *worker, msg sdnotify.Message) {
	if w.state != workerStarting && w.state != workerReady {
		return // stopping: nothing it says changes its end
	}
	if v, ok := msg.Get("WATCHDOG_USEC"); ok {
		d, err := sdnotify.ParseUsec(v)
		switch {
		case err != nil:
			m.rate.watchdogSaid.log(m, "worker's WATCHDOG_USEC= refused", "worker", w.slot, "worker_pid", w.pid, "err", err)
		case d < config.MinWatchdog || d > config.MaxWatchdog:
			m.rate.watchdogSaid.log(m, "worker's WATCHDOG_USEC= refused", "worker", w.slot, "worker_pid", w.pid,
				"err", fmt.Sprintf("%s is not between %s and %s (a worker cannot switch its watchdog off)", d, config.MinWatchdog, config.MaxWatchdog))
		default:
			if d != w.watchdogInterval() {
				m.rate.watchdogSaid.log(m, "worker changed its watchdog", "worker", w.slot, "worker_pid", w.pid, "watchdog", d)
			}
			w.watchdog = d
			m.armWatchdog(w)
		}
	}
	switch v, _ := msg.Get("WATCHDOG"); v {
	case "1":
		if w.timer != nil && w.timer.kind == tWorkerWatchdog {
			m.armWatchdog(w)
		}
	case "trigger":
		m.watchdogFailed(w, "watchdog trigger")
		return
	}
	if v, ok := msg.Get("EXTEND_TIMEOUT_USEC"); ok && w.state == workerStarting {
		d, err := sdnotify.ParseUsec(v)
		if err != nil {
			m.rate.watchdogSaid.log(m, "worker's EXTEND_TIMEOUT_USEC= refused", "worker", w.slot, "worker_pid", w.pid, "err", err)
			return
		}
		m.extendStart(w, d)
	}
}

// extendStart moves a starting worker's start deadline to now+d, within
// [started+start_timeout, started+maxStartStretch*start_timeout].
func (m *Master) extendStart(w *worker, d time.Duration) {
	t := w.timer
	if t == nil || t.kind != tWorkerStart {
		return
	}
	cfg := w.pool.cfg
	now := m.sys.now()
	limit := w.started.Add(maxStartStretch * cfg.StartTimeout)
	want := now.Add(min(d, limit.Sub(now))) // no overflow: d is at most a Duration's worth
	if orig := w.started.Add(cfg.StartTimeout); want.Before(orig) {
		want = orig
	}
	if want.Equal(t.at.Add(t.d)) {
		return
	}
	if want.Equal(limit) && now.Add(d).After(limit) {
		m.rate.watchdogSaid.log(m, "worker's EXTEND_TIMEOUT_USEC= capped", "worker", w.slot, "worker_pid", w.pid,
			"asked", d, "start_deadline", fmt.Sprintf("%d × start_timeout after it started (%s)", maxStartStretch, maxStartStretch*cfg.StartTimeout))
	}
	disarm(t)
	w.timer = m.arm(&timer{kind: tWorkerStart, d: max(want.Sub(now), 0), w: w})
	w.extended = want
}

// startWindow says how long w had to become ready, for the reason of its start timeout:
// start_timeout, or what its EXTEND_TIMEOUT_USEC= made of it.
func startWindow(w *worker) string {
	start := w.pool.cfg.StartTimeout
	if got := w.extended.Sub(w.started); !w.extended.IsZero() && got > start {
		return fmt.Sprintf("%s (start_timeout %s, extended by EXTEND_TIMEOUT_USEC=)", got.Round(time.Millisecond), start)
	}
	return start.String()
}
