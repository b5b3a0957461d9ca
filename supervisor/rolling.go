//go:build linux

package supervisor

import (
	"fmt"
	"slices"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/sdnotify"
)

// A rolling reload ([rollout] strategy = "rolling"): the new pool's slots start surge at a
// time, the first batch canary workers when canary is set; when a batch is ready, the old
// workers of the same slots retire (moved to a retiring pool of their own, so the drain is
// the one every retired pool has), and the next batch starts. At most count + surge
// workers run, and never fewer than count are ready. A canary batch is put on probation
// (reload.soak, the [health] check) before the rest follows; without a canary, the
// probation runs once every new worker is ready, as with strategy "all".
//
// A failure before the reload completes (a new worker exits, reports ERRNO=, the check
// fails) brings the vacated old slots back first: they start again from the old config,
// while the new workers that are still there serve on; once the old pool is whole and
// ready again (or its start_timeout has passed), the new workers retire and the reload is
// reported failed.
type rolling struct {
	old     *pool // the pool being replaced: the master's current one when the reload began
	surge   int
	next    int   // the next slot of the new pool to start, 1-based
	batch   []int // slots of the batch in flight
	vacated []int // old slots whose workers retired for new ones
	canary  bool  // the batch in flight is the canary
	trialed bool  // the canary passed its probation: no trial at the end
	// draining: the old workers the last batch replaced, retiring; the next batch starts
	// once they are gone, so that at most count + surge workers run.
	draining *pool

	back   bool   // failed: the vacated old slots start again
	reason string // why it failed
	timer  *timer // tRollBack: the bound of the wait for the old slots
}

// startRolling starts the first batch of a rolling reload.
func (m *Master) startRolling(r *reload) {
	ro := &rolling{old: m.current, surge: r.cfg.Rollout.Surge, next: 1}
	r.roll = ro
	n := ro.surge
	if c := r.cfg.Rollout.Canary; c > 0 {
		n, ro.canary = c, true
	}
	m.log.Info("reload: rolling", "workers", len(r.pool.workers), "surge", ro.surge, "canary", r.cfg.Rollout.Canary)
	m.rollBatch(r, n)
}

// rollBatch starts the next n slots of the new pool.
func (m *Master) rollBatch(r *reload, n int) {
	ro, p := r.roll, r.pool
	ro.batch = ro.batch[:0]
	for ; n > 0 && ro.next <= len(p.workers); n-- {
		ro.batch = append(ro.batch, ro.next)
		ro.next++
	}
	m.log.Info("reload: starting a batch of new workers", "slots", fmt.Sprint(ro.batch), "canary", ro.canary)
	for _, slot := range slices.Clone(ro.batch) {
		m.spawn(p, slot)
		if m.reload != r || ro.back {
			return // the start failed the reload
		}
	}
}

// batchReady reports whether every worker of the batch in flight is ready.
func (ro *rolling) batchReady(p *pool) bool {
	for _, slot := range ro.batch {
		if w := p.workers[slot-1]; w == nil || w.state != workerReady {
			return false
		}
	}
	return true
}

// done reports whether every slot of the new pool has started.
func (ro *rolling) done(p *pool) bool { return ro.next > len(p.workers) }

// rollChanged runs when a worker of a rolling reload's pool became ready or went away.
func (m *Master) rollChanged(r *reload) {
	ro := r.roll
	if ro.back || ro.draining != nil || r.probation != nil || !ro.batchReady(r.pool) {
		return
	}
	if ro.canary && (r.cfg.Reload.Soak > 0 || r.cfg.Health.On()) {
		// The canary serves beside the old workers, on trial; advance goes on.
		ro.canary = false
		m.log.Info("reload: the canary is ready; probation before the rest", "slots", fmt.Sprint(ro.batch))
		if m.readyOnce {
			m.notifySystemd(sdnotify.ExtendTimeoutUsec(probationBound(r.cfg, true) + 5*time.Second))
		}
		r.probation = m.startProbation(r.pool, r.cfg.Health, true, r.cfg.Reload.Soak)
		return
	}
	if ro.canary {
		ro.canary, ro.trialed = false, true // a canary with nothing to try: it is ready, go on
	}
	m.rollOn(r)
}

// rollOn retires the old workers the batch replaced and starts the next batch, or, when
// every new worker runs, ends the reload: its probation (unless the canary had one), then
// commit.
func (m *Master) rollOn(r *reload) {
	ro := r.roll
	if r.probation != nil { // the canary's, passed
		m.endProbation(r.probation)
		r.probation = nil
		ro.trialed = true
	}
	if part := m.vacate(r, ro.batch); part != nil && !part.empty() {
		ro.draining = part // rollDrained goes on
		return
	}
	m.rollNext(r)
}

// rollNext starts the next batch, or ends the reload.
func (m *Master) rollNext(r *reload) {
	ro := r.roll
	if !ro.done(r.pool) {
		m.rollBatch(r, ro.surge)
		return
	}
	if ro.trialed {
		m.commitReload()
		return
	}
	m.reloadReady()
}

// rollDrained runs when a retiring pool is gone: the old workers a batch replaced.
func (m *Master) rollDrained(p *pool) {
	if r := m.reload; r != nil && r.roll != nil && r.roll.draining == p {
		r.roll.draining = nil
		if !r.roll.back {
			m.rollNext(r)
		}
	}
}

// vacate retires the old workers of slots: they move to a retiring pool of their own,
// which it returns (nil: no old worker ran in those slots).
func (m *Master) vacate(r *reload, slots []int) *pool {
	ro, old := r.roll, r.roll.old
	if old == nil || old != m.current {
		return nil
	}
	part := newPool(old.id, old.cfg, old.cred, old.listeners)
	part.notify = old.notify
	moved := false
	for _, s := range slots {
		if s > len(old.workers) {
			continue
		}
		disarm(old.restart[s-1])
		old.restart[s-1] = nil
		ro.vacated = append(ro.vacated, s)
		if w := old.workers[s-1]; w != nil {
			old.workers[s-1] = nil
			w.pool = part
			part.workers[s-1] = w
			moved = true
		}
	}
	if !moved {
		return nil
	}
	m.log.Info("reload: old workers retire for the new ones", "slots", fmt.Sprint(slots))
	m.retire(part, false)
	return part
}

// reloadWorkerFailed is a failure of a reload's new workers (an exit, ERRNO=, the check).
// A rolling reload that vacated old slots brings them back before it gives up.
func (m *Master) reloadWorkerFailed(reason string) {
	r := m.reload
	ro := r.roll
	if ro == nil || ro.back || len(ro.vacated) == 0 || ro.old != m.current || m.role == roleStopping {
		m.failReload(reason)
		return
	}
	ro.back, ro.reason = true, reason
	m.endProbation(r.probation)
	r.probation = nil
	m.log.Warn("rolling reload failed; the old workers it replaced start again, the new ones serve until they are ready",
		"reason", reason, "slots", fmt.Sprint(ro.vacated))
	ro.timer = m.arm(&timer{kind: tRollBack, d: ro.old.cfg.StartTimeout, p: r.pool})
	for _, s := range ro.vacated {
		if ro.old.workers[s-1] == nil && ro.old.restart[s-1] == nil {
			m.spawn(ro.old, s)
		}
		if m.reload != r {
			return
		}
	}
	m.rolledBackMaybe(ro.old)
}

// rolledBackMaybe ends a failed rolling reload once the old pool is whole and ready again.
func (m *Master) rolledBackMaybe(old *pool) {
	if r := m.reload; r != nil && r.roll != nil && r.roll.back && r.roll.old == old && old.allReady() {
		m.failReload(r.roll.reason)
	}
}

func (m *Master) onRollBackTimeout(t *timer) {
	r := m.reload
	if r == nil || r.roll == nil || r.roll.timer != t {
		return
	}
	r.roll.timer = nil
	m.log.Warn("the old workers of a failed rolling reload are not all ready in time; the new ones retire anyway",
		"ready", r.roll.old.readyCount(), "wanted", len(r.roll.old.workers))
	m.failReload(r.roll.reason)
}

// rollingStep describes a rolling reload for baton status.
func (ro *rolling) describe(p *pool) string {
	switch {
	case ro.back:
		return fmt.Sprintf("rolling back: %d of %d old workers ready again", ro.old.readyCount(), len(ro.old.workers))
	case ro.canary:
		return fmt.Sprintf("rolling: canary %v starting", ro.batch)
	}
	return fmt.Sprintf("rolling: %d of %d new workers ready, %d old retired; batch %v", p.readyCount(), len(p.workers), len(ro.vacated), ro.batch)
}

// rollingOK says whether a reload to cfg can roll: there is a current pool to replace.
func (m *Master) rollingOK(cfg *config.Config) bool {
	return cfg.Rollout.Strategy == config.StrategyRolling && m.current != nil
}
