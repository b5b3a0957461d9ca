//go:build linux

package supervisor

import (
	"errors"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/metrics"
	"github.com/baton-supervisor/baton/sdnotify"
)

// A reload is a HUP (or `baton reload`) in flight. It has two steps: the config is read off
// the loop (pool nil), then new workers start on a merged set of listeners and replace the
// current ones once every one of them is ready. A bad config, or new workers that fail,
// keep the old ones serving.
type reload struct {
	seq       int
	bySignal  bool
	started   time.Time
	stamp     string // the config file as it was read (configStamp); "" if unknown
	cfg       *config.Config
	pool      *pool
	probation *probation          // every new worker is ready: on trial until it commits (probation.go)
	roll      *rolling            // a rolling reload's progress (rolling.go); nil: all at once
	listeners []*fdstore.Listener // the set after the reload
	unused    []*fdstore.Listener // current listeners the new config drops: closed on success
	opened    []*fdstore.Listener // opened for this reload: closed on failure
	controls  []*ctlSock          // control sockets opened for this reload: closed on failure
}

// canReload says why a reload cannot start now, or nil.
func (m *Master) canReload() error {
	switch m.role {
	case roleStopping, roleExited:
		return errors.New("the master is stopping")
	case roleUpgrading, roleSoaking, roleCommitting, roleHandingOver, roleRollingBack:
		return errors.New("an upgrade is in flight: commit or roll it back first")
	}
	return nil
}

// startReload re-reads the config, off the loop; onConfigLoaded goes on.
func (m *Master) startReload(bySignal bool) {
	if m.reload != nil {
		m.log.Warn("reload ignored: a reload is already in flight")
		return
	}
	m.reloads++
	m.reload = &reload{seq: m.reloads, bySignal: bySignal, started: m.sys.now()}
	m.log.Info("reload: reading the config", "event", "reload-started")
	if m.readyOnce {
		m.notifySystemd(sdnotify.Reloading, sdnotify.MonotonicUsec(monotonicNow()),
			sdnotify.ExtendTimeoutUsec(m.cfg.Worker.StartTimeout+probationBound(m.cfg, true)+5*time.Second))
	}
	m.sys.loadConfig(m.reload.seq)
}

// onConfigLoaded starts the new workers of the reload in flight. A result for a reload
// that was abandoned meanwhile (WINCH, a stop) is dropped.
func (m *Master) onConfigLoaded(ev configLoaded) {
	r := m.reload
	if r == nil || r.seq != ev.seq || r.cfg != nil {
		return
	}
	if ev.err != nil {
		m.reload = nil
		r.stamp = ev.stamp
		m.reloadFailed(r, "bad config: "+ev.err.Error())
		return
	}
	ss := ev.specs
	if ss == nil {
		ss = specs(ev.cfg)
	}
	use, unused, err := m.sys.resolve(ss, m.listeners)
	if err != nil {
		m.reload = nil
		m.reloadFailed(r, err.Error())
		return
	}
	r.cfg, r.listeners, r.unused, r.stamp = ev.cfg, use, unused, ev.stamp
	if m.parent == nil {
		// A path control_socket names now is served at once: `baton reload --wait -c FILE`
		// reads it from the file as it is now. The old path closes when the reload is done.
		if r.controls, err = m.openMissingControl(controlPaths(ev.cfg)); err != nil {
			m.reload = nil
			m.reloadFailed(r, err.Error())
			return
		}
	}
	for _, l := range use {
		if !contains(m.listeners, l) {
			r.opened = append(r.opened, l)
			m.log.Info("listening", "name", l.Name, "network", l.Network, "address", l.Addr, "source", l.Source.String())
		}
	}
	p, err := m.newPoolFor(ev.cfg, use)
	if err != nil {
		m.reload = nil
		closeAll(r.opened)
		m.closeControl("the reload failed", r.controls...)
		m.reloadFailed(r, err.Error())
		return
	}
	r.pool = p
	if m.rollingOK(ev.cfg) {
		m.startRolling(r)
		return
	}
	m.log.Info("reload: starting new workers", "pool", p.id, "workers", len(p.workers))
	m.spawnAll(p)
}

// reloadReady runs when every new worker of the reload is ready: the new workers go on
// trial (reload.soak, the health check) beside the old ones, or, with neither, replace
// them at once.
func (m *Master) reloadReady() {
	r := m.reload
	if r.probation != nil {
		return
	}
	if r.cfg.Reload.Soak <= 0 && !r.cfg.Health.On() {
		m.commitReload()
		return
	}
	if m.readyOnce {
		// systemd (Type=notify-reload) waits for READY=1: the trial of the new config may be
		// longer than what the reload's start said.
		m.notifySystemd(sdnotify.ExtendTimeoutUsec(probationBound(r.cfg, true) + 5*time.Second))
	}
	r.probation = m.startProbation(r.pool, r.cfg.Health, true, r.cfg.Reload.Soak)
}

// commitReload retires the old workers once every new one is ready and passed its trial.
func (m *Master) commitReload() {
	r := m.reload
	m.reload = nil
	m.endProbation(r.probation)
	if r.roll != nil {
		disarm(r.roll.timer)
	}
	if old := m.current; old != nil {
		if m.probation != nil && m.probation.pool == old {
			m.probation.pool = r.pool // a new master's trial goes on with its new workers
		}
		if m.uproll != nil {
			// A new master's rolling start replaced by a reload of it: every slot runs now;
			// its old master retires what it has left at the commit.
			m.uproll = nil
		}
		m.retireGracefully(old)
	}
	r.pool.ready = true
	m.current = r.pool
	m.cfg = r.cfg
	m.listeners = r.listeners
	for _, l := range r.unused {
		m.log.Info("listener closed: no longer in the config", "name", l.Name, "address", l.Addr)
	}
	m.unstoreListeners(r.unused)
	closeAll(r.unused)
	m.storeListeners(r.opened)
	if m.parent == nil {
		m.syncControl()
		m.syncMetrics()
	}
	m.setLastErr("", 0)
	m.record("reload", "ok", "", r.started)
	m.countReload(metrics.ResultOK, r.started)
	m.log.Info("reload complete", "pool", r.pool.id, "workers", len(r.pool.workers), "event", "reload-ok")
	m.answerReload(r, nil)
	if !m.readyOnce {
		m.firstReady() // a reload before the first pool was ready brought the first ready pool
		return
	}
	m.notifyReady()
}

// failReload abandons the reload in flight: its workers stop, what it opened is closed,
// the old workers keep serving.
func (m *Master) failReload(reason string) {
	r := m.reload
	m.reload = nil
	m.endProbation(r.probation)
	if r.roll != nil {
		disarm(r.roll.timer)
	}
	if r.pool != nil {
		m.retire(r.pool, false)
	}
	closeAll(r.opened)
	m.closeControl("the reload failed", r.controls...)
	m.reloadFailed(r, reason)
}

func (m *Master) reloadFailed(r *reload, reason string) {
	m.setLastErr("reload failed: "+reason, 0)
	m.record("reload", "failed", reason, r.started)
	m.countReload(metrics.ResultFailed, r.started)
	m.log.Error("reload failed; the old workers keep serving", "reason", reason, "event", "reload-failed")
	m.answerReload(r, errors.New(m.lastErr))
	if m.role != roleStopping && m.readyOnce {
		m.notifyReady()
	}
}

// refuseReload answers a reload signal this master cannot act on now (an upgrade in
// flight, a commit): systemd's Type=notify-reload waits for RELOADING=1 and READY=1, and
// `baton reload --wait` gets the refusal.
func (m *Master) refuseReload(why string) {
	m.reloads++
	r := &reload{seq: m.reloads, bySignal: true}
	if m.readyOnce {
		m.notifySystemd(sdnotify.Reloading, sdnotify.MonotonicUsec(monotonicNow()))
	}
	m.log.Warn("reload refused: "+why, "event", "reload-failed")
	m.record("reload", "failed", "refused: "+why, time.Time{})
	m.countReload(metrics.ResultRefused, time.Time{})
	m.answerReload(r, errors.New("reload refused: "+why))
	if m.readyOnce {
		m.notifyReady()
	}
}

func contains(ls []*fdstore.Listener, l *fdstore.Listener) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}
