//go:build linux

package supervisor

import (
	"time"
)

// Status is what `baton status` shows: this master, its workers, what is in flight.
type Status struct {
	PID        int              `json:"pid"`
	Generation int              `json:"generation"`
	Main       bool             `json:"main"`  // in charge (false: a new master not committed yet)
	State      string           `json:"state"` // the master's role: serving, upgrading, soaking, ...
	Config     string           `json:"config,omitempty"`
	Line       string           `json:"line"` // the STATUS= line
	Listeners  []ListenerStatus `json:"listeners"`
	Workers    []WorkerStatus   `json:"workers"`
	Reload     *ReloadStatus    `json:"reload,omitempty"`
	Upgrade    *UpgradeStatus   `json:"upgrade,omitempty"`
	LastError  string           `json:"last_error,omitempty"`
}

// ListenerStatus describes one listening socket.
type ListenerStatus struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	Source  string `json:"source"`
}

// WorkerStatus describes one worker process.
type WorkerStatus struct {
	Slot     int    `json:"slot"`
	PID      int    `json:"pid"`
	Pool     int    `json:"pool"`
	State    string `json:"state"` // starting, ready, stopping, lingering
	Role     string `json:"role"`  // current, reload candidate, retiring
	Uptime   string `json:"uptime"`
	Failures int    `json:"failures,omitempty"` // crashes in a row of its slot
	Status   string `json:"status,omitempty"`   // the worker's own STATUS=
}

// ReloadStatus describes a reload in flight.
type ReloadStatus struct {
	Ready  int `json:"ready"`
	Wanted int `json:"wanted"`
}

// UpgradeStatus describes the upgrade this master started.
type UpgradeStatus struct {
	NewPID int    `json:"new_pid"`
	State  string `json:"state"`
	Since  string `json:"since"`
}

func (m *Master) status() Status {
	st := Status{
		PID: m.pid, Generation: m.gen, Main: m.inCharge(), Config: m.cfg.Path,
		Line: m.statusLine(), LastError: m.lastErr, State: m.role.String(),
	}
	for _, l := range m.listeners {
		st.Listeners = append(st.Listeners, ListenerStatus{Name: l.Name, Network: l.Network, Address: l.Addr, Source: l.Source.String()})
	}
	now := m.sys.now()
	add := func(p *pool, role string) {
		for _, w := range p.all() {
			st.Workers = append(st.Workers, WorkerStatus{
				Slot: w.slot, PID: w.pid, Pool: p.id, State: w.state.String(), Role: role,
				Uptime: now.Sub(w.started).Round(time.Second).String(), Failures: p.failures[w.slot-1], Status: w.status,
			})
		}
	}
	if m.current != nil {
		add(m.current, "current")
	}
	if r := m.reload; r != nil && r.pool != nil {
		add(r.pool, "reload candidate")
		st.Reload = &ReloadStatus{Ready: r.pool.readyCount(), Wanted: len(r.pool.workers)}
	} else if r != nil {
		st.Reload = &ReloadStatus{}
	}
	for _, p := range m.retiring {
		add(p, "retiring")
	}
	if up := m.up; up != nil {
		st.Upgrade = &UpgradeStatus{NewPID: up.pid, State: m.role.String(), Since: now.Sub(up.started).Round(time.Millisecond).String()}
	}
	return st
}
