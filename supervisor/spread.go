//go:build linux

package supervisor

import (
	"slices"
	"time"

	"github.com/baton-supervisor/baton/config"
)

// The paced drain, [worker] stop_spread: a graceful retire (a reload's old pool, an
// upgrade's commit, WINCH, a graceful stop) sends its workers' stop signals one at a time,
// spread over the window, rather than all at once, so that the clients of long-lived
// connections (websockets, gRPC, keep-alive) reconnect gradually instead of in one burst.
// HAProxy's close-spread-time does the same for its own connections.
//
// The schedule: the pool's n ready workers, in slot order, worker i (0-based) at
// i*stop_spread/n after the retire began. The first goes at once (the retire starts doing
// its work at the moment it is asked for), the gaps are equal, and the last signal goes
// at (n-1)/n of the window, so a retire ends by stop_spread + stop_timeout whatever n:
// the one bound every wait (commit, stop, --wait) adds. Each worker's stop_timeout starts
// at its own signal. A worker not signalled yet is still ready and serves; baton status
// shows when its signal is due (WorkerStatus.StopAt).
//
// What ends a schedule early: a fast stop (TERM, INT) signals everyone at once; a
// rollback of the commit that retired the pool (or HUP during the upgrade, after WINCH)
// puts the workers not signalled yet back to work (reinstate). A graceful stop during a
// schedule leaves it as it is: restarting it would only make the stop longer.

// spread is a retiring pool's schedule of stop signals. The master loop owns it.
type spread struct {
	ws    []*worker     // the workers to signal, in order; ws[:next] have been
	next  int           // ws[next] is the next one due
	began time.Time     // when the retire began: ws[i] is due at began + i*every
	every time.Duration // stop_spread / len(ws)
	timer *timer        // tSpread: the signal of ws[next]
}

// holds reports whether w waits in the schedule for its stop signal. Safe on nil.
func (sp *spread) holds(w *worker) bool {
	return sp != nil && slices.Contains(sp.ws[sp.next:], w)
}

// dueAt is when w's stop signal is due, if the schedule holds it.
func (sp *spread) dueAt(w *worker) (time.Time, bool) {
	if sp == nil {
		return time.Time{}, false
	}
	i := slices.Index(sp.ws, w)
	if i < sp.next {
		return time.Time{}, false
	}
	return sp.began.Add(time.Duration(i) * sp.every), true
}

// retireGracefully is a graceful retire of p, paced by its stop_spread. A pool retiring
// already keeps the schedule it has (or, without one, is retired as it was). A new master
// not committed yet never paces: its graceful stop is a rollback (or part of a stop of
// both generations), the old master's workers serve, and the old master waits for it.
func (m *Master) retireGracefully(p *pool) {
	if p.retiring || p.cfg.StopSpread <= 0 || m.parent != nil {
		m.retire(p, false)
		return
	}
	var ws []*worker
	for _, w := range p.live() {
		// Only a ready worker serves clients worth pacing; a starting one stops at once.
		if w.state == workerReady {
			ws = append(ws, w)
		}
	}
	if len(ws) > 1 {
		sp := &spread{ws: ws, next: 1, began: m.sys.now(), every: p.cfg.StopSpread / time.Duration(len(ws))}
		p.spread = sp
		sp.timer = m.arm(&timer{kind: tSpread, d: sp.every, p: p})
		m.log.Info("workers stop one at a time", "pool", p.id, "workers", len(ws), "stop_spread", p.cfg.StopSpread, "every", sp.every)
	}
	m.retire(p, false) // signals ws[0] and every worker the schedule does not hold
}

// onSpread sends the stop signal that is due, and arms the next one.
func (m *Master) onSpread(p *pool, t *timer) {
	sp := p.spread
	if sp == nil || sp.timer != t {
		return
	}
	sp.timer = nil
	w := sp.ws[sp.next]
	sp.next++
	if p.workers[w.slot-1] == w && (w.state == workerReady || w.state == workerStarting) {
		// A worker that exited meanwhile, or was stopped as a failure, keeps its place in
		// the schedule empty: the pace stays the same.
		m.stopWorker(w, p.cfg.StopSignal, p.cfg.StopTimeout)
	}
	if sp.next == len(sp.ws) {
		p.spread = nil
		return
	}
	d := max(sp.began.Add(time.Duration(sp.next)*sp.every).Sub(m.sys.now()), 0)
	sp.timer = m.arm(&timer{kind: tSpread, d: d, p: p})
}

// endSpread drops p's schedule: the workers it held are no longer held. Safe without one.
func (m *Master) endSpread(p *pool) {
	if p.spread != nil {
		disarm(p.spread.timer)
		p.spread = nil
	}
}

// reinstate puts the workers of the last pool retired from current that its schedule
// still holds back to work, as the master's current pool: a rollback during a paced
// commit, or HUP after WINCH during an upgrade. They never stopped serving. The workers
// signalled already drain on in a pool of their own (same id and config); their slots get
// new workers. It reports false when there is nothing to reinstate.
func (m *Master) reinstate() bool {
	p := m.benched
	if m.current != nil || p == nil || p.spread == nil || !slices.Contains(m.retiring, p) {
		return false
	}
	held := 0
	for _, w := range p.live() {
		if p.spread.holds(w) {
			held++
		}
	}
	if held == 0 {
		return false
	}
	n := len(p.workers)
	q := newPool(p.id, p.cfg, p.cred, p.listeners)
	q.notify, q.retiring, q.lingering = p.notify, true, p.lingering
	p.lingering = nil
	for _, w := range q.lingering {
		w.pool = q
	}
	for i, w := range p.workers {
		if w != nil && !p.spread.holds(w) {
			w.pool, q.workers[i], p.workers[i] = q, w, nil
		}
	}
	m.endSpread(p)
	i := slices.Index(m.retiring, p)
	if q.empty() {
		m.retiring = slices.Delete(m.retiring, i, i+1)
	} else {
		m.retiring[i] = q
	}
	p.retiring = false
	for _, w := range p.live() {
		w.retired = false
	}
	m.current = p
	m.log.Info("workers not stopped yet serve on; the stopped ones are replaced", "pool", p.id, "serving", held, "replaced", n-held)
	for slot := 1; slot <= n; slot++ {
		if p.workers[slot-1] == nil && p.restart[slot-1] == nil && !p.retiring {
			m.spawn(p, slot)
		}
	}
	return true
}

// drainBound is how long a graceful retire of workers configured as w takes at most: the
// last stop signal before stop_spread ends, then its stop_timeout.
func drainBound(w config.Worker) time.Duration {
	return w.StopSpread + w.StopTimeout
}
