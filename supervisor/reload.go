//go:build linux

package supervisor

import (
	"errors"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/sdnotify"
)

// A reload is a HUP in flight: new workers from a re-read config, on a merged set of
// listeners, that replace the current workers once every one of them is ready.
type reload struct {
	cfg       *config.Config
	pool      *pool
	listeners []*fdstore.Listener // the set after the reload
	unused    []*fdstore.Listener // current listeners the new config drops: closed on success
	opened    []*fdstore.Listener // opened for this reload: closed on failure
}

// startReload is HUP: re-read the config; start new workers; old workers retire only when
// every new one is ready. A bad config, or new workers that fail, keep the old ones serving.
func (m *Master) startReload(bySignal bool) {
	if m.reload != nil {
		m.log.Warn("HUP ignored: a reload is already in flight")
		return
	}
	m.reloadBySignal = bySignal
	m.log.Info("reload: reading the config", "event", "reload-started")
	m.notifySystemd(sdnotify.Reloading, sdnotify.MonotonicUsec(monotonicNow()),
		sdnotify.ExtendTimeoutUsec(m.cfg.Worker.StartTimeout+5*time.Second))
	cfg, err := m.opts.Load()
	if err == nil {
		err = Precheck(cfg)
	}
	if err != nil {
		m.reloadFailed("bad config: " + err.Error())
		return
	}
	use, unused, err := fdstore.Resolve(specs(cfg), m.listeners)
	if err != nil {
		m.reloadFailed(err.Error())
		return
	}
	r := &reload{cfg: cfg, listeners: use, unused: unused}
	for _, l := range use {
		if !contains(m.listeners, l) {
			r.opened = append(r.opened, l)
			m.log.Info("listening", "name", l.Name, "network", l.Network, "address", l.Addr, "source", l.Source.String())
		}
	}
	p, err := m.newPoolFor(cfg, use)
	if err != nil {
		closeAll(r.opened)
		m.reloadFailed(err.Error())
		return
	}
	r.pool = p
	m.reload = r
	m.log.Info("reload: starting new workers", "pool", p.id, "workers", len(p.workers))
	m.spawnAll(p)
}

// commitReload retires the old workers once every new one is ready.
func (m *Master) commitReload() {
	r := m.reload
	m.reload = nil
	if old := m.current; old != nil {
		m.retire(old, false)
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
	m.lastErr = ""
	m.log.Info("reload complete", "pool", r.pool.id, "workers", len(r.pool.workers), "event", "reload-ok")
	m.answerReload(nil)
	m.notifySystemd(sdnotify.Ready, sdnotify.Status(m.statusLine()))
}

// failReload abandons the reload in flight: its workers stop, what it opened is closed,
// the old workers keep serving.
func (m *Master) failReload(reason string) {
	r := m.reload
	m.reload = nil
	m.retire(r.pool, false)
	closeAll(r.opened)
	m.reloadFailed(reason)
}

func (m *Master) reloadFailed(reason string) {
	m.lastErr = "reload failed: " + reason
	m.log.Error("reload failed; the old workers keep serving", "reason", reason, "event", "reload-failed")
	m.answerReload(errors.New(m.lastErr))
	if m.stopping == running {
		m.notifySystemd(sdnotify.Ready, sdnotify.Status(m.statusLine()))
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
