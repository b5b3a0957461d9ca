//go:build linux

package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
)

// The master's side of its workers' lives: start, ready, exit, restart, retire. All of it
// runs on the master loop.

// newPoolFor builds a pool for cfg on the master's listeners ls.
func (m *Master) newPoolFor(cfg *config.Config, ls []*fdstore.Listener) (*pool, error) {
	cred, err := credential(cfg.Worker)
	if err != nil {
		return nil, err
	}
	p := newPool(m.poolSeq+1, cfg.Worker, cred, ls)
	if m.notify != nil {
		if p.notify, err = m.notify.addrFor(p.notifyGid()); err != nil {
			return nil, err
		}
	}
	m.poolSeq++
	return p, nil
}

// startCurrent starts the master's serving pool from cfg.
func (m *Master) startCurrent(cfg *config.Config) error {
	p, err := m.newPoolFor(cfg, m.listeners)
	if err != nil {
		return err
	}
	m.current = p
	m.spawnAll(p)
	return nil
}

// spawnAll starts every worker of a new pool (the system starts them a few at a time).
// The workers are registered, and failures handled, in slot order, the started ones first,
// since a failure may retire the whole pool.
func (m *Master) spawnAll(p *pool) {
	ws := make([]*worker, len(p.workers))
	for i := range ws {
		ws[i] = &worker{pool: p, slot: i + 1}
	}
	errs := m.sys.startWorkers(ws)
	for i, w := range ws {
		if errs[i] == nil {
			m.started(w)
		}
	}
	for i, err := range errs {
		if err != nil && !p.retiring {
			m.failed(p, i+1, err.Error(), time.Time{})
		}
	}
}

// spawn starts the worker of one slot. A failure to start counts as a failed start.
func (m *Master) spawn(p *pool, slot int) {
	w := &worker{pool: p, slot: slot}
	if err := m.sys.startWorkers([]*worker{w})[0]; err != nil {
		m.failed(p, slot, err.Error(), time.Time{})
		return
	}
	m.started(w)
}

// started registers a worker that runs, and arms its start timeout; with ready =
// "started" it is ready at once.
func (m *Master) started(w *worker) {
	p := w.pool
	w.started = m.sys.now()
	p.workers[w.slot-1] = w
	m.metrics.counts.WorkerStarts++
	m.log.Info("worker started", "worker", w.slot, "worker_pid", w.pid, "pool", p.id)
	if w.logWarning != "" {
		// Each start that finds no journald says so; a crash loop does not flood the log.
		m.rate.journalStream.log(m, "worker logs to the master's journal stream, as baton[PID]: it could not connect its own",
			"worker", w.slot, "worker_pid", w.pid, "err", w.logWarning)
	}
	if p.retiring {
		w.retired = true
		m.stopWorker(w, p.cfg.StopSignal, p.cfg.StopTimeout)
		return
	}
	if p.cfg.Ready == config.ReadyStarted {
		m.markReady(w)
		return
	}
	w.timer = m.arm(&timer{kind: tWorkerStart, d: p.cfg.StartTimeout, w: w})
}

func (m *Master) markReady(w *worker) {
	disarm(w.timer)
	w.timer = nil
	w.state = workerReady
	w.readyAt = m.sys.now()
	m.armWatchdog(w)
	if m.lastErrSlot == w.slot && w.pool == m.current {
		m.setLastErr("", 0) // the crash loop is over; the history keeps it
	}
	m.log.Info("worker ready", "worker", w.slot, "worker_pid", w.pid, "pool", w.pool.id)
	m.poolChanged(w.pool)
}

func (m *Master) onStartTimeout(w *worker, t *timer) {
	if w.timer != t || w.state != workerStarting {
		return
	}
	p := w.pool
	m.log.Warn("worker not ready in time; killing it", "worker", w.slot, "worker_pid", w.pid, "start_timeout", p.cfg.StartTimeout)
	w.failReason = "not ready within " + startWindow(w)
	m.stopWorker(w, p.cfg.StopSignal, p.cfg.StopTimeout)
}

// stopWorker sends sig to w's process group and arms SIGKILL for after grace.
func (m *Master) stopWorker(w *worker, sig syscall.Signal, grace time.Duration) {
	disarm(w.timer)
	if w.state != workerLingering {
		w.state = workerStopping
	}
	m.sys.signalGroup(w, sig)
	w.timer = m.arm(&timer{kind: tWorkerKill, d: grace, w: w})
}

func (m *Master) onKillTimeout(w *worker, t *timer) {
	if w.timer != t || w.state == workerExited {
		return
	}
	w.timer = nil
	if w.unchecked { // its group was not looked at yet: it may have stopped in time
		if !m.sys.groupsLinger([]*worker{w})[0] {
			m.exited(w, false, false)
			m.poolChanged(w.pool)
			return
		}
	}
	w.killed = true
	m.log.Warn("worker did not stop in time; killing it", "worker", w.slot, "worker_pid", w.pid, "timeout", t.d, "lingering", w.state == workerLingering)
	m.sys.signalGroup(w, syscall.SIGKILL)
	if w.state == workerLingering {
		// The leader is gone; what is left of its group dies of the SIGKILL just sent.
		m.gone(w)
	}
}

// onWorkerExit runs when a worker's process has exited (not reaped yet). If its process
// group has members left (a shell's child, a server's own workers), they get the worker's
// stop signal and its stop timeout, then SIGKILL: nothing a worker started outlives it.
//
// A retiring pool's workers exit in a burst (commit, reload), and a look at their groups
// costs a pass over /proc: such a worker, stopped by the master, waits as lingering and
// unchecked (its stop signal sent, its SIGKILL armed) until the pool's last worker has
// exited, and then all of them are looked at in one pass.
func (m *Master) onWorkerExit(w *worker, st exitStatus) {
	if w.state == workerExited || w.state == workerLingering {
		return
	}
	p := w.pool
	was := w.state
	w.exit = st
	m.metrics.counts.WorkerExits++
	if p.workers[w.slot-1] == w {
		p.workers[w.slot-1] = nil
	}
	// While a stop_spread holds workers back no burst comes: each exit is looked at alone.
	if p.retiring && was == workerStopping && len(p.live()) > 0 && p.spread == nil {
		w.state, w.unchecked = workerLingering, true
		p.lingering = append(p.lingering, w)
		return
	}
	ws := []*worker{w}
	for _, x := range p.lingering {
		if x.unchecked {
			ws = append(ws, x)
		}
	}
	lingers := m.sys.groupsLinger(ws)
	for i, x := range ws {
		m.exited(x, lingers[i], x == w && was != workerStopping)
	}
	if !p.retiring && !w.retired {
		m.failed(p, w.slot, fmt.Sprintf("(pid %d) %s", w.pid, w.exitReason()), w.readyAt)
	}
	m.poolChanged(p)
}

// exited settles an exited worker once its group was looked at: reaped if the group is
// empty, else lingering (after the stop signal, unless it had it) until the group is.
func (m *Master) exited(w *worker, lingers, signal bool) {
	p := w.pool
	reason := w.exitReason()
	if w.unchecked {
		w.unchecked = false
		for i, x := range p.lingering {
			if x == w {
				p.lingering = append(p.lingering[:i:i], p.lingering[i+1:]...)
				break
			}
		}
	}
	if lingers {
		w.state = workerLingering
		p.lingering = append(p.lingering, w)
		if signal {
			m.stopWorker(w, p.cfg.StopSignal, p.cfg.StopTimeout)
		}
		w.linger = m.arm(&timer{kind: tWorkerLinger, d: lingerPoll, w: w})
		m.log.Info("worker exited; its process group lingers", "worker", w.slot, "worker_pid", w.pid, "how", reason)
		return
	}
	disarm(w.timer)
	w.timer = nil
	m.sys.reap(w)
	w.state = workerExited
	if p.retiring || w.retired {
		m.log.Info("worker exited", "worker", w.slot, "worker_pid", w.pid, "how", reason)
	}
}

// lingerPoll is the first interval at which a lingering process group is looked at again;
// it doubles up to a second.
const lingerPoll = 50 * time.Millisecond

func (m *Master) onLingerCheck(w *worker, t *timer) {
	if w.linger != t || w.state != workerLingering {
		return
	}
	if m.sys.groupsLinger([]*worker{w})[0] {
		w.linger = m.arm(&timer{kind: tWorkerLinger, d: min(2*t.d, time.Second), w: w})
		return
	}
	m.gone(w)
}

// gone reaps a lingering worker whose group is empty (or was just SIGKILLed).
func (m *Master) gone(w *worker) {
	p := w.pool
	disarm(w.timer)
	disarm(w.linger)
	w.timer, w.linger = nil, nil
	m.sys.reap(w)
	w.state, w.unchecked = workerExited, false
	for i, x := range p.lingering {
		if x == w {
			p.lingering = append(p.lingering[:i:i], p.lingering[i+1:]...)
			break
		}
	}
	m.log.Info("worker's process group gone", "worker", w.slot, "worker_pid", w.pid)
	m.poolChanged(p)
}

// poolChanged runs whenever a worker of p became ready or went away: it moves what waited
// on it.
func (m *Master) poolChanged(p *pool) {
	switch {
	case p.retiring:
		if p.empty() {
			m.endSpread(p)
			for i, x := range m.retiring {
				if x == p {
					m.retiring = append(m.retiring[:i:i], m.retiring[i+1:]...)
					m.sys.trimMemory() // a generation is gone: what it cost is garbage
					m.rollDrained(p)
					m.drained()
					break
				}
			}
		}
	case m.reload != nil && p == m.reload.pool:
		if m.reload.roll != nil {
			m.rollChanged(m.reload)
		} else if p.allReady() {
			m.reloadReady()
		}
	case p == m.current:
		m.rolledBackMaybe(p)
		m.restoredMaybe(p)
		if m.upRollChanged(p) {
			return
		}
		if !p.ready && p.allReady() {
			p.ready = true
			m.log.Info("workers ready", "workers", len(p.workers), "pool", p.id)
			if !m.readyOnce {
				m.firstReady()
			}
		}
	}
}

// firstReady runs once, when the first pool of this master is ready: a first generation
// tells systemd, a new master tells its old master.
func (m *Master) firstReady() {
	m.readyOnce = true
	switch m.role {
	case roleJoining:
		// On trial until the old master commits; ready to it once the check passed.
		m.probation = m.startProbation(m.current, m.cfg.Health, false, 0)
		m.advance(m.probation)
	case roleStarting:
		m.become(roleServing, "first pool ready")
		if m.parent == nil && len(m.history) == 0 {
			m.record("start", "ok", "", m.startedAt)
		}
		m.log.Info("ready", "event", "ready")
		m.notifyReady()
	}
}

// tellReady is a new master whose first workers are ready (and passed the health check):
// it tells its old master, which soaks, then commits.
func (m *Master) tellReady() {
	m.become(roleAwaitingCommit, "first pool ready")
	if err := m.parent.link.send(handoffMsg{Type: "ready"}); err != nil {
		m.log.Error("cannot tell the old master we are ready", "err", err)
		return
	}
	m.log.Info("ready; waiting for the old master to commit the upgrade", "event", "ready")
}

// drained runs when a retiring pool is gone: a commit hands over once every worker of this
// master is gone, a stop ends once everything is.
func (m *Master) drained() {
	switch m.role {
	case roleCommitting:
		if m.current == nil && m.reload == nil && len(m.retiring) == 0 {
			m.handOverStart()
		}
	case roleStopping:
		m.maybeExit()
	}
}

// maybeExit ends a stopping master once nothing of it runs.
func (m *Master) maybeExit() {
	if m.role == roleStopping && m.current == nil && m.reload == nil && len(m.retiring) == 0 && m.up == nil {
		m.become(roleExited, "stopped")
	}
}

// failed decides what a worker that exited on its own, or could not start, means: a failed
// reload, a failed upgrade (a new master whose first workers fail), or a crash to restart.
func (m *Master) failed(p *pool, slot int, reason string, readyAt time.Time) {
	switch {
	case p.retiring:
	case m.uproll != nil && m.uproll.failed && p == m.current:
		// A rolling start that failed: serving on, as it is, until the old master asks
		// this one to stop.
	case m.reload != nil && p == m.reload.pool && m.reload.probation != nil:
		m.failProbation(m.reload.probation, fmt.Sprintf("new worker %d %s during probation", slot, reason))
	case m.reload != nil && p == m.reload.pool && m.reload.roll != nil && m.reload.roll.back:
		// Rolling back already: the new workers serve until the old ones are back.
	case m.reload != nil && p == m.reload.pool:
		m.reloadWorkerFailed(fmt.Sprintf("new worker %d %s before the reload was complete", slot, reason))
	case m.probation != nil && p == m.probation.pool:
		m.failProbation(m.probation, fmt.Sprintf("worker %d %s during probation", slot, reason))
	case m.role == roleJoining && p == m.current && !p.ready:
		m.failStart(fmt.Sprintf("worker %d %s", slot, reason))
	default:
		m.slotFailed(p, slot, reason, readyAt)
	}
}

// slotFailed schedules the restart of a slot whose worker crashed or could not start, with
// exponential backoff, and reports a crash loop.
func (m *Master) slotFailed(p *pool, slot int, reason string, readyAt time.Time) {
	i := slot - 1
	if !readyAt.IsZero() && m.sys.now().Sub(readyAt) >= healthyAfter(p.cfg) {
		p.failures[i] = 0
	}
	p.failures[i]++
	p.lastFail[i] = reason
	n := p.failures[i]
	m.metrics.counts.WorkerRestarts++
	delay := backoff(p.cfg, n)
	level, msg := slog.LevelWarn, "worker failed; restarting"
	if n >= crashLoop {
		level, msg = slog.LevelError, "worker crash loop; restarting"
		m.setLastErr(fmt.Sprintf("worker %d crash loop: %s (%d in a row)", slot, reason, n), slot)
		if n == crashLoop {
			m.record("worker-crash-loop", "failed", fmt.Sprintf("worker %d: %s (%d in a row)", slot, reason, n), time.Time{})
		}
	}
	m.log.Log(nil, level, msg, "worker", slot, "how", reason, "failures", n, "backoff", delay, "event", "worker-crashed")
	p.restart[i] = m.arm(&timer{kind: tRestart, d: delay, p: p, slot: slot})
}

func (m *Master) onRestart(p *pool, slot int, t *timer) {
	if p.restart[slot-1] != t {
		return
	}
	p.restart[slot-1] = nil
	if !p.retiring {
		p.restarts[slot-1]++
		m.spawn(p, slot)
	}
}

// retire stops every worker of p: the worker's stop signal to its process group and its
// stop timeout, then SIGKILL; a fast retire sends SIGTERM with fastStopGrace. p no longer
// restarts anything. A graceful retire leaves the workers p's stop_spread schedule holds to
// it (spread.go); a fast one ends the schedule and stops them too.
func (m *Master) retire(p *pool, fast bool) {
	if p == m.current {
		m.current = nil
		m.uproll = nil // a new master's rolling start ends with its pool
		m.benched = p
	}
	if m.probation != nil && m.probation.pool == p {
		m.endProbation(m.probation) // nothing left on trial
		m.probation = nil
	}
	if !p.retiring {
		p.retiring = true
		m.retiring = append(m.retiring, p)
	}
	p.cancelRestarts()
	sig, grace := p.cfg.StopSignal, p.cfg.StopTimeout
	if fast {
		sig, grace = syscall.SIGTERM, fastStopGrace
		m.endSpread(p)
	}
	for _, w := range p.all() {
		w.retired = true
		if (w.state == workerStopping || w.state == workerLingering || p.spread.holds(w)) && !fast {
			continue
		}
		m.stopWorker(w, sig, grace)
	}
	m.poolChanged(p) // an empty pool is gone at once
}

// Precheck finds, before any worker starts, what would make every worker fail: a command
// that is not there, a user that does not exist.
func Precheck(cfg *config.Config) error {
	if len(cfg.Worker.Command) == 0 {
		return fmt.Errorf("worker.command: empty")
	}
	if _, err := credential(cfg.Worker); err != nil {
		return err
	}
	name := cfg.Worker.Command[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) && cfg.Worker.Dir != "" {
			name = filepath.Join(cfg.Worker.Dir, name)
		}
		fi, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("worker.command: %w", err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("worker.command: %s is not an executable file", name)
		}
		return nil
	}
	for _, kv := range cfg.Worker.Env {
		if strings.HasPrefix(kv, "PATH=") {
			return nil // the worker looks it up in its own PATH
		}
	}
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("worker.command: %w", err)
	}
	return nil
}
