//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/metrics"
)

// upgrade is the old master's view of the upgrade in flight: the new master N.
type upgrade struct {
	pid     int
	pidfd   int // osSystem: N's pidfd, until N exited
	link    link
	started time.Time
	readyAt time.Time // when N said ready
	timer   *timer    // upgrade timeout while N is not ready, then the soak time
	kill    *timer    // SIGKILL for an N asked to exit that does not
	quit    bool      // QUIT arrived before N was ready: commit once it is
	reason  string    // why it failed, as N or this master saw it
	said    string    // N's last word before it exited ("exit 1: bad config ...")
	why     string    // what rolled it back, for the metrics (rollbackTimeout, ...); "" = N exited

	progress *MasterSnapshot // N as it last described itself (validSnapshot); nil until then
	draining int             // committing: this master's workers when the commit began

	// handedOver: MAINPID= naming N was (or is being) sent. From then on this master
	// never signals N: systemd may already take it for the service.
	handedOver bool

	// A rolling upgrade (rolling.go): this master's slots retired for the new master's
	// batches, the part of its pool draining (the new master's next batch waits for it),
	// and, rolling back, the bound of the wait for those slots to be ready again.
	vacated []int
	rolling *pool // the part of its pool retiring for the new master's last batch
	restore *timer

	waiters         []replyFunc // control clients waiting for the commit (upgrade or commit --wait)
	rollbackWaiters []replyFunc // control clients waiting for a rollback
}

// startUpgrade is USR2: start the new binary detached, hand it the listeners, and wait for
// it to be ready. Anything that fails leaves this master in charge, as it was; the error
// says why (it has been logged).
func (m *Master) startUpgrade() error {
	refuse := func(why string, args ...any) error {
		m.log.Warn("USR2 ignored: "+why, args...)
		return errors.New("upgrade refused: " + why)
	}
	switch m.role {
	case roleStopping, roleExited:
		return refuse("the master is stopping")
	case roleUpgrading, roleSoaking, roleCommitting, roleHandingOver, roleRollingBack:
		return refuse("an upgrade is already in flight", "new_pid", m.up.pid, "state", m.role.String())
	case roleJoining, roleAwaitingCommit:
		return refuse("this master's own upgrade is not committed yet")
	case roleStarting:
		return refuse("this master's workers are not ready yet")
	}
	if m.reload != nil {
		return refuse("a reload is in flight")
	}
	pidfile := m.cfg.PIDFile
	if pidfile != "" {
		if err := m.sys.toOldbin(pidfile, m.pid); err != nil {
			m.log.Warn("upgrade: pid file not moved aside", "err", err)
		}
	}
	hello := handoffMsg{Type: "hello", Generation: m.gen + 1, OldPID: m.pid, Config: m.cfg.Path,
		WatchdogUsec: uint64(m.watchdog.Microseconds()), Nofile: m.nofile, History: m.history, Roll: true}
	if m.current != nil {
		hello.Workers = len(m.current.workers)
	}
	handed := slices.Clip(m.listeners)
	for _, c := range m.controls {
		handed = append(handed, c.l)
	}
	if m.metrics.sock != nil {
		handed = append(handed, m.metrics.sock)
	}
	up, err := m.sys.startNewMaster(hello, handed)
	if err != nil {
		m.setLastErr("upgrade failed: "+err.Error(), 0)
		m.record("upgrade", "failed", err.Error(), m.sys.now())
		metrics.Count(&m.metrics.counts.Upgrades, metrics.ResultFailed)
		m.restorePIDFile()
		m.log.Error("upgrade failed; this master stays in charge", "err", err, "event", "upgrade-failed")
		return fmt.Errorf("upgrade failed: %w", err)
	}
	up.started = m.sys.now()
	m.up = up
	m.become(roleUpgrading, "USR2")
	m.log.Info("upgrade started", "new_pid", up.pid, "exe", m.opts.Exe, "timeout", m.cfg.Upgrade.Timeout, "event", "upgrade-started")
	up.timer = m.arm(&timer{kind: tUpgradeReady, d: m.cfg.Upgrade.Timeout, up: up})
	return nil
}

func (m *Master) onUpgradeTimeout(up *upgrade, t *timer) {
	if m.up != up || up.timer != t || m.role != roleUpgrading {
		return
	}
	up.timer = nil
	up.reason = fmt.Sprintf("not ready within %s: %s", m.cfg.Upgrade.Timeout, up.waitingFor())
	m.log.Error("new master not ready in time; stopping it", "new_pid", up.pid, "timeout", m.cfg.Upgrade.Timeout, "waiting_for", up.waitingFor())
	up.why = rollbackTimeout
	m.stopNewMaster(up, syscall.SIGTERM, newMasterGrace)
}

// stopNewMaster asks N to exit with sig, and SIGKILLs it after grace. Never after the
// hand-over began: N may be systemd's main process by then.
func (m *Master) stopNewMaster(up *upgrade, sig syscall.Signal, grace time.Duration) {
	if up.handedOver {
		m.log.Error("BUG: not signalling the new master after the hand-over", "new_pid", up.pid, "signal", signalName(sig))
		return
	}
	m.sys.signalNewMaster(up, sig)
	disarm(up.kill)
	up.kill = m.arm(&timer{kind: tNewMasterKill, d: grace, up: up})
}

func (m *Master) onNewMasterKill(up *upgrade, t *timer) {
	if m.up != up || up.kill != t || up.handedOver {
		return
	}
	up.kill = nil
	m.log.Warn("new master did not exit in time; killing it", "new_pid", up.pid, "timeout", t.d)
	m.sys.signalNewMaster(up, syscall.SIGKILL)
}

func (m *Master) onNewMasterMsg(up *upgrade, msg handoffMsg) {
	if m.up != up {
		return
	}
	switch msg.Type {
	case "ready":
		m.onNewMasterReady(up)
	case "error":
		if up.reason == "" { // a timeout or a rollback already said why
			up.reason = cleanText(msg.Reason)
		}
		m.log.Error("new master reports failure", "new_pid", up.pid, "reason", cleanText(msg.Reason))
		if len(up.vacated) > 0 && m.role == roleUpgrading {
			// A rolling upgrade: the new master serves on until this master's retired
			// slots are back.
			up.why = rollbackNewMasterExited
			m.rollBack(up.reason)
		}
	case "batch":
		m.onBatch(up, msg.Slots)
	case "exit":
		up.said = cleanText(fmt.Sprintf("exit %d: %s", msg.Code, msg.Reason))
	case "progress":
		if validSnapshot(msg.Progress, up.pid) {
			up.progress = msg.Progress
		} else {
			m.rate.progressBad.log(m, "new master's progress message dropped: not valid", "new_pid", up.pid)
		}
	}
}

// waitingFor says what a new master not ready yet was waiting for, from its last
// progress message.
func (up *upgrade) waitingFor() string {
	n := up.progress
	if n == nil {
		return "it never reported its progress (did it start?)"
	}
	what := fmt.Sprintf("%d of %d workers ready", n.Ready, n.Wanted)
	if n.Probation != "" {
		what += "; " + n.Probation
	}
	var not []string
	for _, w := range n.Workers {
		if w.State != workerReady.String() {
			not = append(not, fmt.Sprintf("worker %d (pid %d) %s", w.Slot, w.PID, w.State))
		}
	}
	if len(not) > 0 && len(not) <= 3 {
		what += "; " + strings.Join(not, ", ")
	}
	return what
}

func (m *Master) onNewMasterReady(up *upgrade) {
	if m.role != roleUpgrading {
		return
	}
	disarm(up.timer)
	up.timer = nil
	up.readyAt = m.sys.now()
	m.metrics.counts.Observe(metrics.PhaseUpgradeReady, up.readyAt.Sub(up.started))
	m.become(roleSoaking, "new master ready")
	m.log.Info("new master ready", "new_pid", up.pid, "took", m.sys.now().Sub(up.started).Round(time.Millisecond))
	switch {
	case up.quit:
		m.commit()
	case m.cfg.Upgrade.Commit == config.CommitAuto:
		soak := m.cfg.Upgrade.Soak
		m.log.Info("upgrade commits automatically after the soak time", "soak", soak)
		up.timer = m.arm(&timer{kind: tSoak, d: soak, up: up})
	default:
		m.log.Info("manual commit: `baton commit` (or WINCH then QUIT to this master) commits; `baton rollback` (or HUP to it and QUIT to the new master) rolls back", "new_pid", up.pid)
		up.awaitOperator()
	}
}

func (m *Master) onSoakEnd(up *upgrade, t *timer) {
	if m.up != up || up.timer != t || m.role != roleSoaking {
		return
	}
	up.timer = nil
	m.commit()
}

// requestCommit is QUIT to the old master during an upgrade (nginx).
func (m *Master) requestCommit() {
	up := m.up
	switch m.role {
	case roleUpgrading:
		up.quit = true
		m.log.Info("QUIT: committing as soon as the new master is ready", "new_pid", up.pid)
	case roleSoaking:
		m.commit()
	case roleRollingBack:
		m.log.Warn("QUIT ignored: the upgrade is being rolled back", "new_pid", up.pid)
	default:
		m.log.Info("QUIT: the upgrade is already being committed", "new_pid", up.pid)
	}
}

// onUnitState is systemd's answer to the question QUIT asked during an upgrade: if the
// unit is stopping, QUIT is its KillSignal= and stops both generations, as `baton stop`
// does; otherwise (or when systemd cannot tell) it is the operator's commit (nginx).
func (m *Master) onUnitState(ev unitState) {
	if !m.quitAsk {
		return
	}
	m.quitAsk = false
	switch {
	case ev.err == nil && ev.stopping:
		m.log.Info("QUIT: systemd is stopping the unit: both generations stop gracefully")
		m.gracefulStop()
	case !m.role.upgrading() || m.role == roleHandingOver:
		m.log.Info("QUIT: the upgrade ended while systemd was asked; nothing to commit", "role", m.role.String())
	default:
		if ev.err != nil {
			m.log.Warn("QUIT: cannot ask systemd whether it stops the unit; QUIT commits the upgrade", "err", ev.err)
		}
		m.requestCommit()
	}
}

// commit retires this master's workers; handOverStart runs once they are gone.
func (m *Master) commit() {
	up := m.up
	disarm(up.timer)
	up.timer = nil
	m.become(roleCommitting, "commit")
	up.draining = 0
	for _, p := range m.allPools() {
		up.draining += len(p.all())
	}
	m.log.Info("committing the upgrade: old workers drain", "new_pid", up.pid)
	if err := up.link.send(handoffMsg{Type: "committing"}); err != nil {
		m.log.Debug("cannot tell the new master its probation is over", "new_pid", up.pid, "err", err)
	}
	if m.reload != nil {
		m.failReload("upgrade committing")
	}
	if m.current != nil {
		m.retireGracefully(m.current)
	}
	m.drained() // nothing may have been left to drain
}

// handOverStart makes N systemd's main process (off the loop: handOverDone), or, off
// systemd, ends the commit at once.
func (m *Master) handOverStart() {
	up := m.up
	m.become(roleHandingOver, "old workers gone")
	up.handedOver = true
	disarm(up.kill)
	up.kill = nil
	if m.sd == nil {
		m.finishCommit()
		return
	}
	m.sys.handOver(up)
}

func (m *Master) onHandOverDone(ev handOverDone) {
	up := m.up
	if up != ev.up || m.role != roleHandingOver {
		return
	}
	switch {
	case ev.err == nil:
	case ev.mainPID == m.pid:
		// systemd still takes this master for the service: exiting now would stop it.
		m.log.Error("systemd did not take the new master as the main process; rolling back", "new_pid", up.pid, "err", ev.err)
		up.handedOver = false
		up.why = rollbackHandOver
		m.rollBack("hand-over to systemd failed: " + ev.err.Error())
		return
	default:
		main := "unknown"
		if ev.mainPID != 0 {
			main = strconv.Itoa(ev.mainPID)
		}
		m.log.Warn("systemd did not confirm the hand-over; the new master is taken to be in charge", "new_pid", up.pid, "main_pid", main, "err", ev.err)
	}
	m.finishCommit()
}

// finishCommit tells N it is in charge and ends this master.
func (m *Master) finishCommit() {
	up := m.up
	m.countUpgrade(metrics.ResultCommitted, up)
	counts := m.metrics.counts.Clone()
	if err := up.link.send(handoffMsg{Type: "commit", Metrics: &counts}); err != nil {
		m.log.Warn("cannot tell the new master it is in charge; it takes charge when this master exits", "new_pid", up.pid, "err", err)
	}
	m.log.Info("upgrade committed; the old master exits", "new_pid", up.pid, "took", m.sys.now().Sub(up.started).Round(time.Millisecond), "event", "upgrade-committed")
	up.answer(nil)
	m.stopControl()
	m.become(roleExited, "committed")
}

// rollBack gives up the upgrade in flight: this master's workers run again, N is asked to
// exit (QUIT: it drains), and onNewMasterExit finishes the rollback.
func (m *Master) rollBack(reason string) {
	up := m.up
	up.reason = reason
	if up.why == "" {
		up.why = rollbackRequested
	}
	disarm(up.timer)
	up.timer = nil
	m.become(roleRollingBack, reason)
	m.startWorkersAgain()
	if len(up.vacated) > 0 && m.current != nil && !m.current.allReady() {
		// Its slots retired for the new master's workers start again: the new master
		// serves until they are ready (restoredMaybe), at most their start timeout.
		up.restore = m.arm(&timer{kind: tRestore, d: m.cfg.Worker.StartTimeout, up: up})
		return
	}
	m.stopNewMaster(up, syscall.SIGQUIT, m.cfg.Worker.StopTimeout+newMasterGrace)
}

// onNewMasterExit runs when N's pidfd says it exited; how says how it ended, as far as the
// kernel could tell. Before the hand-over this is a rollback: the pid file names this master
// again and its workers run again.
func (m *Master) onNewMasterExit(up *upgrade, how string) {
	disarm(up.timer)
	disarm(up.kill)
	disarm(up.restore)
	up.timer, up.kill, up.restore = nil, nil, nil
	up.link.close()
	m.sys.releaseNewMaster(up)
	if m.up != up {
		return
	}
	m.up = nil
	if m.role == roleStopping {
		m.log.Info("new master exited", "new_pid", up.pid)
		up.answer(errors.New("stopped"))
		m.maybeExit()
		return
	}
	if how == "" {
		how = "exit status unknown"
	}
	reason := up.reason
	switch {
	case reason == "" && up.said != "":
		reason = up.said
	case reason == "":
		reason = "exited without a word: " + how
	}
	m.setLastErr("upgrade rolled back: new master "+strconv.Itoa(up.pid)+": "+reason, 0)
	m.record("upgrade", "rolled back", reason, up.started)
	m.countUpgrade(metrics.ResultRolledBack, up)
	m.restorePIDFile() // before the log line: whoever reads it finds the pid file in place
	m.log.Error("upgrade rolled back: the new master exited before the upgrade was committed", "new_pid", up.pid, "reason", reason, "exit", how, "event", "upgrade-rolled-back")
	m.startWorkersAgain()
	if m.role == roleHandingOver {
		m.become(roleRollingBack, "new master exited during the hand-over")
	}
	m.become(roleServing, "new master exited")
	up.answer(errors.New(m.lastErr))
}

// startWorkersAgain starts this master's workers, from the config they ran with, if none
// run (after WINCH, or during a commit); the ones a stop_spread has not stopped yet serve
// on (reinstate).
func (m *Master) startWorkersAgain() {
	if m.current != nil {
		if m.up != nil {
			m.restoreSlots(m.current, m.up.vacated) // a rolling upgrade's retired slots
		}
		return
	}
	if m.reinstate() {
		return
	}
	m.log.Info("starting workers again")
	if err := m.startCurrent(m.cfg); err != nil {
		m.log.Error("cannot start workers", "err", err)
	}
}

// rollbackWorkers is HUP to the old master while its upgrade is not being committed
// (nginx): its workers start again if they were stopped; the upgrade goes on.
func (m *Master) rollbackWorkers() {
	if m.current != nil {
		m.log.Info("HUP during an upgrade: workers are running already")
		return
	}
	m.log.Info("HUP during an upgrade: starting workers again without re-reading the config")
	m.startWorkersAgain()
}

func (m *Master) restorePIDFile() {
	if m.cfg.PIDFile == "" {
		return
	}
	if err := m.sys.restorePID(m.cfg.PIDFile, m.pid); err != nil {
		m.log.Error("cannot restore the pid file", "err", err)
	}
}
