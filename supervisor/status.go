//go:build linux

package supervisor

import (
	"fmt"
	"strings"
	"time"
)

// Status is what `baton status` shows: this master, its workers, what is in flight and
// until when, the new master of an upgrade, and the last lifecycle events. Its JSON field
// names are an interface (`baton status --json`): add fields, never rename them.
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
	LastError  string           `json:"last_error,omitempty"` // cleared by a later success; kept in History

	Role      string         `json:"role"` // "in charge" or "new master, upgrade not committed"
	Version   string         `json:"version,omitempty"`
	Exe       string         `json:"exe,omitempty"` // the binary a new master is started from
	StartedAt time.Time      `json:"started_at"`
	Uptime    string         `json:"uptime"`
	Step      *Step          `json:"step,omitempty"` // what the master waits for now, if anything
	History   []HistoryEntry `json:"history,omitempty"`
}

// Step is what a master waits for, and until when (the armed timer that ends the wait).
type Step struct {
	Name      string     `json:"name"` // new-master-starting, soaking, manual-commit, committing, handing-over, rolling-back, reloading, stopping, joining, awaiting-commit
	Text      string     `json:"text"` // "soaking: commits automatically in 8s"
	Deadline  *time.Time `json:"deadline,omitempty"`
	Remaining string     `json:"remaining,omitempty"` // Deadline less now, rounded to the second
}

// ListenerStatus describes one listening socket.
type ListenerStatus struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	Source  string `json:"source"` // activated (socket unit), fdstore, opened (by this master), handed over (by the old master)
}

// WorkerStatus describes one worker process.
type WorkerStatus struct {
	Slot      int       `json:"slot"`
	PID       int       `json:"pid"`
	Pool      int       `json:"pool"`
	State     string    `json:"state"` // starting, ready, stopping, lingering
	Role      string    `json:"role"`  // current, reload candidate, retiring
	Uptime    string    `json:"uptime"`
	Failures  int       `json:"failures,omitempty"` // crashes in a row of its slot
	Status    string    `json:"status,omitempty"`   // the worker's own STATUS=
	StartedAt time.Time `json:"started_at"`
	Restarts  int       `json:"restarts,omitempty"` // restarts of its slot in this pool
	// Failure is why the master is stopping it as a failure (a start or watchdog timeout,
	// WATCHDOG=trigger); LastFailure why its slot's previous worker failed.
	Failure     string `json:"failure,omitempty"`
	LastFailure string `json:"last_failure,omitempty"`
	// StopAt: a retiring worker still ready, whose stop signal stop_spread holds back
	// until then; it serves meanwhile.
	StopAt *time.Time `json:"stop_at,omitempty"`
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
	// NewMaster is the new master as it last described itself (it is not reachable on the
	// control socket before its commit); nil until it said anything.
	NewMaster *MasterSnapshot `json:"new_master,omitempty"`
	Reason    string          `json:"reason,omitempty"` // why it is being rolled back
}

// MasterSnapshot is what a new master tells its old master about itself while the upgrade
// is in flight (handoff "progress"), and what the old master shows of it.
type MasterSnapshot struct {
	PID        int            `json:"pid"`
	Generation int            `json:"generation"`
	State      string         `json:"state"`
	Version    string         `json:"version,omitempty"`
	Exe        string         `json:"exe,omitempty"`
	StartedAt  time.Time      `json:"started_at"`
	Ready      int            `json:"ready"`  // workers ready
	Wanted     int            `json:"wanted"` // workers its config asks for
	Workers    []WorkerStatus `json:"workers"`
	// Probation says how its trial goes ("health check failing (1 of 3): exit status 1"), while
	// it is on trial with a check or a soak of its own.
	Probation string `json:"probation,omitempty"`
}

// HistoryEntry is one lifecycle event: a start, a reload, an upgrade, a rollback, a crash
// loop.
type HistoryEntry struct {
	Time       time.Time `json:"time"`
	Generation int       `json:"generation"`
	Event      string    `json:"event"`  // start, reload, upgrade, worker-crash-loop
	Result     string    `json:"result"` // ok, failed, rolled back
	Reason     string    `json:"reason,omitempty"`
	Took       string    `json:"took,omitempty"`
}

// historyLen is how many lifecycle events a master keeps, and hands to its new master.
const historyLen = 10

func (m *Master) status() Status {
	now := m.sys.now()
	st := Status{
		PID: m.pid, Generation: m.gen, Main: m.inCharge(), Config: m.cfg.Path,
		Line: m.statusLine(), LastError: m.lastErr, State: m.role.String(),
		Role: "in charge", Version: m.opts.Version, Exe: m.opts.Exe,
		StartedAt: m.startedAt, Uptime: age(now, m.startedAt),
		History: append([]HistoryEntry(nil), m.history...),
	}
	if m.parent != nil {
		st.Role = "new master, upgrade not committed"
	}
	for _, l := range m.listeners {
		src, ok := m.origins[l]
		if !ok {
			src = l.Source.String()
		}
		st.Listeners = append(st.Listeners, ListenerStatus{Name: l.Name, Network: l.Network, Address: l.Addr, Source: src})
	}
	st.Workers = m.workerStatus(now)
	if r := m.reload; r != nil && r.pool != nil {
		st.Reload = &ReloadStatus{Ready: r.pool.readyCount(), Wanted: len(r.pool.workers)}
	} else if r != nil {
		st.Reload = &ReloadStatus{}
	}
	if up := m.up; up != nil {
		st.Upgrade = &UpgradeStatus{NewPID: up.pid, State: m.role.String(), Since: now.Sub(up.started).Round(time.Millisecond).String(), Reason: up.reason}
		if n := up.progress; n != nil {
			c := *n
			c.Workers = slicesCloneWorkers(n.Workers, now)
			st.Upgrade.NewMaster = &c
		}
	}
	st.Step = m.step(now)
	return st
}

func slicesCloneWorkers(ws []WorkerStatus, now time.Time) []WorkerStatus {
	out := make([]WorkerStatus, len(ws))
	for i, w := range ws {
		w.Uptime = age(now, w.StartedAt)
		out[i] = w
	}
	return out
}

// workerStatus lists every worker process of this master, serving ones first.
func (m *Master) workerStatus(now time.Time) []WorkerStatus {
	var ws []WorkerStatus
	add := func(p *pool, role string) {
		for _, w := range p.shown() {
			ws = append(ws, WorkerStatus{
				Slot: w.slot, PID: w.pid, Pool: p.id, State: w.state.String(), Role: role,
				Uptime: age(now, w.started), Failures: p.failures[w.slot-1], Status: cleanText(w.status),
				StartedAt: w.started, Restarts: p.restarts[w.slot-1],
				Failure: cleanText(w.failReason), LastFailure: cleanText(p.lastFail[w.slot-1]),
			})
			if at, ok := p.spread.dueAt(w); ok {
				ws[len(ws)-1].StopAt = &at
			}
		}
	}
	if m.current != nil {
		add(m.current, "current")
	}
	if r := m.reload; r != nil && r.pool != nil {
		add(r.pool, "reload candidate")
	}
	for _, p := range m.retiring {
		add(p, "retiring")
	}
	return ws
}

func age(now, since time.Time) string {
	if since.IsZero() {
		return ""
	}
	return now.Sub(since).Round(time.Second).String()
}

// step says what this master waits for and until when. The deadlines are those of the
// armed timers, so what it says is what will happen.
func (m *Master) step(now time.Time) *Step {
	s := &Step{}
	var deadline *timer
	up := m.up
	switch m.role {
	case roleUpgrading:
		s.Name, deadline = "new-master-starting", up.timer
		s.Text = "waiting for the new master to be ready"
		if n := up.progress; n != nil {
			s.Text += fmt.Sprintf(" (%d of %d workers ready", n.Ready, n.Wanted)
			if n.Probation != "" {
				s.Text += "; " + strings.ReplaceAll(n.Probation, "%", "%%") // the new master's words: no verbs
			}
			s.Text += ")"
		}
		if len(up.vacated) > 0 {
			s.Text += fmt.Sprintf("; rolling: %d old worker(s) retired for its batches", len(up.vacated))
		}
		if up.quit {
			s.Text += "; commits as soon as it is"
		}
		s.Text += ", times out in %s"
	case roleSoaking:
		if up.timer != nil {
			s.Name, deadline, s.Text = "soaking", up.timer, "soaking: commits automatically in %s"
			if n := up.progress; n != nil && n.Probation != "" {
				s.Text += " (new master: " + strings.ReplaceAll(n.Probation, "%", "%%") + ")"
			}
		} else {
			s.Name, s.Text = "manual-commit", fmt.Sprintf("manual commit: waits for the operator (baton commit or QUIT to pid %d commits, baton rollback rolls back)", m.pid)
		}
	case roleCommitting, roleStopping:
		n, held, t := m.draining()
		s.Name = "committing"
		if m.role == roleStopping {
			s.Name = "stopping"
		}
		s.Text = fmt.Sprintf("%s: %d worker(s) still draining", s.Name, n)
		if m.role == roleCommitting && up.draining > 0 {
			s.Text = fmt.Sprintf("committing: %d of %d old workers still draining", n, up.draining)
		}
		if held > 0 {
			s.Text += fmt.Sprintf(", %d of them serving until their stop signal (stop_spread)", held)
		}
		if t != nil {
			deadline = t
			s.Text += " (stop timeout in %s)"
		}
		if m.role == roleStopping && up != nil {
			s.Text += fmt.Sprintf("; new master %d stops too", up.pid)
		}
	case roleHandingOver:
		s.Name, s.Text = "handing-over", fmt.Sprintf("handing over to systemd: MAINPID=%d sent, waiting for its confirmation", up.pid)
		if m.sd == nil {
			s.Text = fmt.Sprintf("handing over to new master %d", up.pid)
		}
	case roleRollingBack:
		s.Name, s.Text = "rolling-back", fmt.Sprintf("rolling back: waiting for new master %d to exit", up.pid)
		if up.kill != nil {
			deadline = up.kill
			s.Text += " (SIGKILL in %s)"
		}
	case roleJoining:
		s.Name = "joining"
		if pr := m.probation; pr != nil {
			s.Text = fmt.Sprintf("workers ready, waiting for the health check to pass (%s); old master %d in charge", strings.ReplaceAll(pr.describe(), "%", "%%"), m.parent.oldPID)
		} else if p := m.current; p != nil {
			s.Text = fmt.Sprintf("starting: %d of %d workers ready; old master %d in charge", p.readyCount(), len(p.workers), m.parent.oldPID)
			deadline = p.startDeadline()
			if deadline != nil {
				s.Text += " (start timeout in %s)"
			}
		} else {
			s.Text = "starting; old master in charge"
		}
	case roleAwaitingCommit:
		s.Name, s.Text = "awaiting-commit", fmt.Sprintf("ready; waiting for old master %d to commit the upgrade", m.parent.oldPID)
	}
	if s.Name == "" && m.reload != nil {
		s.Name, s.Text = "reloading", "reloading: reading the config"
		if pr := m.reload.probation; pr != nil {
			s.Name, s.Text = "reload-probation", "reloading: new workers on probation beside the old ones"
			if d := pr.describe(); d != "" {
				s.Text += " (" + strings.ReplaceAll(d, "%", "%%") + ")"
			}
			if deadline = pr.soak; deadline != nil {
				s.Text += "; the old ones retire in %s"
			}
		} else if ro, p := m.reload.roll, m.reload.pool; ro != nil {
			s.Text = "reloading: " + ro.describe(p)
			if ro.timer != nil {
				deadline = ro.timer
				s.Text += " (the new ones retire in %s at the latest)"
			}
		} else if p := m.reload.pool; p != nil {
			s.Text = fmt.Sprintf("reloading: %d of %d new workers ready", p.readyCount(), len(p.workers))
			if deadline = p.startDeadline(); deadline != nil {
				s.Text += " (times out in %s)"
			}
		}
	}
	if s.Name == "" {
		return nil
	}
	if deadline != nil {
		d := deadline.at.Add(deadline.d)
		left := max(d.Sub(now), 0).Round(time.Second)
		s.Deadline, s.Remaining = &d, left.String()
		s.Text = fmt.Sprintf(s.Text, left)
	} else {
		s.Text = strings.ReplaceAll(strings.ReplaceAll(s.Text, ", times out in %s", ""), "%%", "%")
	}
	return s
}

// draining counts the workers of the retiring pools, and those of them a stop_spread
// still holds, and finds the stop timeout that ends last among them: for a held worker,
// the one it will get with its stop signal.
func (m *Master) draining() (n, held int, last *timer) {
	for _, p := range m.retiring {
		for _, w := range p.shown() {
			n++
			t := w.timer
			if at, ok := p.spread.dueAt(w); ok {
				held++
				t = &timer{kind: tWorkerKill, at: at, d: p.cfg.StopTimeout}
			}
			if t != nil && t.kind == tWorkerKill && (last == nil || t.at.Add(t.d).After(last.at.Add(last.d))) {
				last = t
			}
		}
	}
	return n, held, last
}

// startDeadline is the start timeout that ends last among the starting workers of p.
func (p *pool) startDeadline() *timer {
	var last *timer
	for _, w := range p.live() {
		if t := w.timer; t != nil && t.kind == tWorkerStart && (last == nil || t.at.Add(t.d).After(last.at.Add(last.d))) {
			last = t
		}
	}
	return last
}

// record adds a lifecycle event to the history, dropping the oldest beyond historyLen.
func (m *Master) record(event, result, reason string, since time.Time) {
	now := m.sys.now()
	e := HistoryEntry{Time: now, Generation: m.gen, Event: event, Result: result, Reason: clip(reason, maxReason)}
	if !since.IsZero() {
		e.Took = now.Sub(since).Round(time.Millisecond).String()
	}
	m.history = append(m.history, e)
	if len(m.history) > historyLen {
		m.history = append([]HistoryEntry(nil), m.history[len(m.history)-historyLen:]...)
	}
}
