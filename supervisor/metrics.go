//go:build linux

package supervisor

import (
	"fmt"
	"net"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/metrics"
)

// The metrics endpoint ([metrics] in the config): the master counts what happens to it on
// the loop (masterMetrics.counts), publishes a snapshot after every event, and serves the
// snapshots over HTTP on goroutines of its own, only while it is in charge. The listening
// socket goes to a new master with the listeners and the control sockets, so a scraper
// never sees the port closed across an upgrade; the counts go at the commit, in the
// "commit" message, so that no counter goes down, and a rollback leaves the new master's
// counts behind with it.

// metricsName names the metrics socket among the listeners passed to a new master.
const metricsName = "baton.metrics"

// masterMetrics is the master's side of the metrics. The loop owns it.
type masterMetrics struct {
	counts metrics.Counts
	pub    metrics.Publisher
	sock   *fdstore.Listener // owned; nil when [metrics] is off
	path   string            // the URL path sock is served at
	srv    *metrics.Server   // serving sock, while this master is in charge

	stopped []*metrics.Server // stopped, their last scrapes maybe still being written
}

func metricsSpec(c config.Metrics) fdstore.Spec {
	spec := fdstore.Spec{Name: metricsName, Network: c.Network, Address: c.Address}
	if c.Network == "unix" && len(c.Address) > 0 && c.Address[0] == '/' {
		// Counts only, as on a TCP port on the loopback, which every local user may reach.
		spec.Mode = 0o666
	}
	return spec
}

// takeMetrics takes the metrics socket an old master handed over out of ls; a first
// master opens the one c names, if any. On error ls is returned whole.
func (m *Master) takeMetrics(c config.Metrics, ls []*fdstore.Listener) ([]*fdstore.Listener, error) {
	rest := ls[:0:0]
	for _, l := range ls {
		if l.Name == metricsName && m.metrics.sock == nil {
			m.metrics.sock = l
		} else {
			rest = append(rest, l)
		}
	}
	if m.metrics.sock != nil || !c.On() || m.parent != nil {
		// A new master opens what its config asks for once it is in charge (syncMetrics).
		m.metrics.path = c.URLPath()
		return rest, nil
	}
	l, err := fdstore.Open(metricsSpec(c))
	if err != nil {
		return ls, fmt.Errorf("metrics: %w", err)
	}
	m.metrics.sock, m.metrics.path = l, c.URLPath()
	return rest, nil
}

// syncMetrics makes the metrics endpoint of a master in charge what its config says now:
// opened, moved, served at another path, or closed. A socket that cannot be opened is
// logged; the old one serves on.
func (m *Master) syncMetrics() {
	c := m.cfg.Metrics
	mm := &m.metrics
	switch {
	case !c.On():
		if mm.sock != nil {
			m.closeMetrics("no longer in the config")
		}
		return
	case mm.sock != nil && mm.sock.Matches(metricsSpec(c)) && mm.path == c.URLPath():
		return
	}
	l := mm.sock
	if l == nil || !l.Matches(metricsSpec(c)) {
		var err error
		if l, err = fdstore.Open(metricsSpec(c)); err != nil {
			m.log.Error("metrics endpoint not moved", "err", err)
			return
		}
		if mm.sock != nil {
			m.closeMetrics("moved to " + l.Addr)
		}
	}
	m.stopMetrics()
	mm.sock, mm.path = l, c.URLPath()
	if m.controlLive {
		m.serveMetrics()
	}
}

// serveMetrics starts serving the metrics socket, if there is one and it is not served yet.
func (m *Master) serveMetrics() {
	mm := &m.metrics
	if mm.sock == nil || mm.srv != nil {
		return
	}
	ln, err := net.FileListener(mm.sock.File)
	if err != nil {
		m.log.Error("metrics endpoint", "address", mm.sock.Addr, "err", err)
		return
	}
	m.publishMetrics()
	mm.srv = metrics.Serve(ln, metrics.Handler(&mm.pub, mm.path, m.log), m.log)
	m.log.Info("metrics endpoint", "network", mm.sock.Network, "address", mm.sock.Addr, "path", mm.path)
}

// stopMetrics stops accepting scrapes at once (the socket stays open, for the next
// master); a scrape in flight finishes on its own goroutines, which never touch the loop's
// state, and cleanup waits for it (bounded). Not waiting here keeps the loop free, and
// not cutting it off keeps a scraper from reading a truncated page at every commit.
func (m *Master) stopMetrics() {
	if srv := m.metrics.srv; srv != nil {
		srv.Stop()
		m.metrics.stopped = append(m.metrics.stopped, srv)
	}
	m.metrics.srv = nil
}

// flushMetrics waits until the scrapes in flight when the endpoint was stopped are done
// (metrics.Server bounds it); called by cleanup, off nothing but the exit.
func (m *Master) flushMetrics() {
	for _, srv := range m.metrics.stopped {
		srv.Wait()
	}
	m.metrics.stopped = nil
}

// closeMetrics stops serving and closes the socket (and removes its file).
func (m *Master) closeMetrics(why string) {
	mm := &m.metrics
	m.stopMetrics()
	if mm.sock == nil {
		return
	}
	mm.sock.Close()
	if mm.sock.Network == "unix" && len(mm.sock.Addr) > 0 && mm.sock.Addr[0] == '/' {
		if err := fdstore.RemoveStale(mm.sock.Addr); err != nil {
			m.log.Debug("metrics socket file left", "address", mm.sock.Addr, "err", err)
		}
	}
	m.log.Info("metrics endpoint closed", "address", mm.sock.Addr, "why", why)
	mm.sock = nil
}

// publishMetrics hands the scrapes a snapshot of this master as it is now. Cheap, and
// skipped when nothing is served.
func (m *Master) publishMetrics() {
	mm := &m.metrics
	if mm.sock == nil {
		return
	}
	s := &metrics.Snapshot{Generation: m.gen, PID: m.pid, Version: m.opts.Version, Counts: mm.counts.Clone()}
	for _, p := range m.allPools() {
		for _, w := range p.shown() {
			s.Workers = append(s.Workers, metrics.Worker{PID: w.pid, State: w.state.String()})
		}
	}
	if m.up != nil {
		s.NewMaster = m.up.pid
	}
	mm.pub.Publish(s)
}

// Counting, called from the machine where things happen.

func (m *Master) countReload(result string, started time.Time) {
	c := &m.metrics.counts
	metrics.Count(&c.Reloads, result)
	if result == metrics.ResultOK {
		now := m.sys.now()
		c.Succeeded(metrics.ActionReload, now)
		if !started.IsZero() {
			c.Observe(metrics.PhaseReload, now.Sub(started))
		}
	}
}

func (m *Master) countUpgrade(result string, up *upgrade) {
	c := &m.metrics.counts
	metrics.Count(&c.Upgrades, result)
	now := m.sys.now()
	switch result {
	case metrics.ResultCommitted:
		c.Succeeded(metrics.ActionUpgrade, now)
		if !up.readyAt.IsZero() {
			c.Observe(metrics.PhaseUpgradeCommit, now.Sub(up.readyAt))
		}
	case metrics.ResultRolledBack:
		why := up.why
		if why == "" {
			why = rollbackNewMasterExited
		}
		metrics.Count(&c.Rollbacks, why)
	}
}

// Values of upgrade.why: what rolled an upgrade back, for baton_rollbacks_total.
const (
	rollbackRequested       = "requested"         // baton rollback
	rollbackTimeout         = "timeout"           // the new master was not ready within upgrade.timeout
	rollbackHandOver        = "hand_over"         // systemd did not take the new master as main
	rollbackNewMasterExited = "new_master_exited" // it failed, or exited, on its own
)
