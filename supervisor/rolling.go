//go:build linux

package supervisor

import (
	"fmt"
	"slices"
	"syscall"
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
func (ro *rolling) batchReady(p *pool) bool { return slotsReady(p, ro.batch) }

// slotsReady reports whether p's workers of slots are all ready.
func slotsReady(p *pool, slots []int) bool {
	for _, slot := range slots {
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

// rollDrained runs when a retiring pool is gone: the old workers a batch replaced (of a
// reload, or of a rolling upgrade's new master).
func (m *Master) rollDrained(p *pool) {
	if up := m.up; up != nil && up.rolling == p {
		up.rolling = nil
		if m.role == roleUpgrading {
			if err := up.link.send(handoffMsg{Type: "go"}); err != nil {
				m.log.Warn("cannot tell the new master to go on", "new_pid", up.pid, "err", err)
			}
		}
	}
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
	part, vacated := m.vacateSlots(old, slots, "reload: old workers retire for the new ones")
	ro.vacated = append(ro.vacated, vacated...)
	return part
}

// vacateSlots retires the workers of old's slots (those in range): they move to a retiring
// pool of their own, which it returns (nil: none ran). It returns the slots vacated: no
// worker runs there and none restarts, until restoreSlots.
func (m *Master) vacateSlots(old *pool, slots []int, msg string) (*pool, []int) {
	var vacated []int
	part := newPool(old.id, old.cfg, old.cred, old.listeners)
	part.notify = old.notify
	moved := false
	for _, s := range slots {
		if s < 1 || s > len(old.workers) {
			continue
		}
		disarm(old.restart[s-1])
		old.restart[s-1] = nil
		vacated = append(vacated, s)
		if w := old.workers[s-1]; w != nil {
			old.workers[s-1] = nil
			w.pool = part
			part.workers[s-1] = w
			moved = true
		}
	}
	if !moved {
		return nil, vacated
	}
	m.log.Info(msg, "slots", fmt.Sprint(slots))
	m.retire(part, false)
	return part, vacated
}

// restoreSlots starts old's vacated slots again (those with no worker and no restart due).
func (m *Master) restoreSlots(old *pool, slots []int) {
	for _, s := range slots {
		if s <= len(old.workers) && old.workers[s-1] == nil && old.restart[s-1] == nil && !old.retiring {
			m.spawn(old, s)
		}
	}
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
	m.restoreSlots(ro.old, ro.vacated)
	if m.reload != r {
		return
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

// describe says how a rolling reload goes, for baton status.
func (ro *rolling) describe(p *pool) string {
	switch {
	case ro.back:
		return fmt.Sprintf("rolling back: %d of %d old workers ready again", ro.old.readyCount(), len(ro.old.workers))
	case ro.canary:
		return fmt.Sprintf("rolling: canary %v starting", ro.batch)
	}
	return fmt.Sprintf("rolling: %d of %d new workers ready, %d old retired; batch %v", p.readyCount(), len(p.workers), len(ro.vacated), ro.batch)
}

// rollBound is what a rolling upgrade under c adds to the wait for it (this master's
// config: the new one may differ, then the client hears the upgrade is still in flight): each
// batch but the first may take a start and the drain of the old workers it replaces, and a
// canary its probation.
func rollBound(c *config.Config) time.Duration {
	r := c.Rollout
	if r.Strategy != config.StrategyRolling {
		return 0
	}
	batches := (c.Worker.Count + r.Surge - 1) / r.Surge
	d := time.Duration(batches) * (c.Worker.StartTimeout + c.Worker.StopTimeout)
	if r.Canary > 0 {
		d += c.Upgrade.Soak + probationBound(c, false)
	}
	return d
}

// rollingOK says whether a reload to cfg can roll: there is a current pool to replace.
func (m *Master) rollingOK(cfg *config.Config) bool {
	return cfg.Rollout.Strategy == config.StrategyRolling && m.current != nil
}

// A rolling upgrade: the new master (N) rolls when its config says strategy = "rolling" and
// its old master (O) said in its hello that it retires its workers slot by slot. N starts
// its first pool in batches; when a batch is ready (a canary: and passed its trial), N
// tells O the slots ("batch"); O retires its own workers of those slots, and once they are
// gone tells N to go on ("go"). After the last batch N goes on as any new master: ready
// (and its probation), O's soak, the commit, which retires what O has left. At most count +
// surge workers run. A failure once O retired workers for N's: N reports it and serves on;
// O starts its retired slots again, and once they are all ready asks N to stop (QUIT).

// upRoll is a new master's rolling start.
type upRoll struct {
	surge    int
	next     int   // the next slot to start, 1-based
	batch    []int // the batch in flight
	canary   bool  // the batch in flight is the canary
	trial    bool  // the canary is on probation (Master.probation)
	waitGo   bool  // the batch was reported: the old master retires its workers of those slots
	reported int   // batches reported
	failed   bool  // a failure was reported: serve on until the old master asks this one to stop
}

// rollsUp reports whether this new master starts in batches.
func (m *Master) rollsUp() bool {
	return m.parent != nil && m.parent.roll && m.parent.oldWorkers > 0 && m.cfg.Rollout.Strategy == config.StrategyRolling
}

// startRollingUp starts a new master's first pool, its first batch only.
func (m *Master) startRollingUp() error {
	p, err := m.newPoolFor(m.cfg, m.listeners)
	if err != nil {
		return err
	}
	m.current = p
	ro := &upRoll{surge: m.cfg.Rollout.Surge, next: 1}
	m.uproll = ro
	n := ro.surge
	if c := m.cfg.Rollout.Canary; c > 0 {
		n, ro.canary = c, true
	}
	m.log.Info("rolling upgrade: starting in batches", "workers", len(p.workers), "surge", ro.surge, "canary", m.cfg.Rollout.Canary, "old_workers", m.parent.oldWorkers)
	m.upRollBatch(n)
	return nil
}

func (m *Master) upRollBatch(n int) {
	ro, p := m.uproll, m.current
	ro.batch = ro.batch[:0]
	for ; n > 0 && ro.next <= len(p.workers); n-- {
		ro.batch = append(ro.batch, ro.next)
		ro.next++
	}
	m.log.Info("rolling upgrade: starting a batch of workers", "slots", fmt.Sprint(ro.batch), "canary", ro.canary)
	for _, slot := range slices.Clone(ro.batch) {
		m.spawn(p, slot)
		if m.uproll != ro || ro.failed || m.current != p {
			return
		}
	}
}

// upRollChanged runs when a worker of a rolling new master's pool became ready or went
// away, before its last batch started. It reports whether it took the change.
func (m *Master) upRollChanged(p *pool) bool {
	ro := m.uproll
	if ro == nil || p != m.current || ro.next > len(p.workers) {
		return false
	}
	if ro.failed || ro.waitGo || m.probation != nil || !slotsReady(p, ro.batch) {
		return true
	}
	if ro.canary && (m.cfg.Upgrade.Soak > 0 || m.cfg.Health.On()) {
		ro.canary, ro.trial = false, true
		m.log.Info("rolling upgrade: the canary is ready; probation before the rest", "slots", fmt.Sprint(ro.batch))
		m.probation = m.startProbation(p, m.cfg.Health, false, m.cfg.Upgrade.Soak)
		return true
	}
	ro.canary = false
	m.upRollReport()
	return true
}

// upRollReport tells the old master that the batch in flight is ready.
func (m *Master) upRollReport() {
	ro := m.uproll
	if ro.trial { // the canary passed
		ro.trial = false
		m.endProbation(m.probation)
		m.probation = nil
	}
	ro.waitGo = true
	ro.reported++
	if err := m.parent.link.send(handoffMsg{Type: "batch", Slots: slices.Clone(ro.batch)}); err != nil {
		m.log.Error("cannot tell the old master a batch is ready", "err", err)
	}
}

// upRollGo is the old master's "go": the old workers the batch replaced are gone.
func (m *Master) upRollGo() {
	ro := m.uproll
	if ro == nil || !ro.waitGo || ro.failed || m.role != roleJoining || m.current == nil {
		return
	}
	ro.waitGo = false
	m.upRollBatch(ro.surge)
	if m.uproll == ro && ro.next > len(m.current.workers) {
		m.poolChanged(m.current) // the last batch may be ready at once (ready = "started")
	}
}

// finishRollUp starts every slot a rolling start had not started yet: the old master is
// gone, there is nothing to wait for.
func (m *Master) finishRollUp() {
	ro := m.uproll
	if ro == nil {
		return
	}
	m.uproll = nil
	if p := m.current; p != nil && !p.retiring {
		for s := ro.next; s <= len(p.workers); s++ {
			if p.workers[s-1] == nil && p.restart[s-1] == nil {
				m.spawn(p, s)
			}
		}
	}
}

// onBatch is the old master's side of a rolling upgrade: the new master's workers of slots
// are ready; this master retires its own, and tells it to go on once they are gone.
func (m *Master) onBatch(up *upgrade, slots []int) {
	if m.role != roleUpgrading || up.rolling != nil {
		m.log.Warn("rolling upgrade: batch ignored", "new_pid", up.pid, "state", m.role.String())
		return
	}
	if m.current == nil { // WINCH: nothing of this master's to retire
		if err := up.link.send(handoffMsg{Type: "go"}); err != nil {
			m.log.Warn("cannot tell the new master to go on", "new_pid", up.pid, "err", err)
		}
		return
	}
	if len(slots) > len(m.current.workers)+maxSnapshotWorkers {
		slots = slots[:len(m.current.workers)] // input from another process: bounded
	}
	part, vacated := m.vacateSlots(m.current, slots, "rolling upgrade: old workers retire for the new master's")
	up.vacated = append(up.vacated, vacated...)
	// The upgrade timeout bounds each batch: the new master's next one starts now.
	disarm(up.timer)
	up.timer = m.arm(&timer{kind: tUpgradeReady, d: m.cfg.Upgrade.Timeout, up: up})
	if part != nil && !part.empty() {
		up.rolling = part // rollDrained says go
		return
	}
	if err := up.link.send(handoffMsg{Type: "go"}); err != nil {
		m.log.Warn("cannot tell the new master to go on", "new_pid", up.pid, "err", err)
	}
}

// restoredMaybe ends the wait of a rollback whose old slots are all ready again: the new
// master, which served meanwhile, is asked to stop.
func (m *Master) restoredMaybe(p *pool) {
	if up := m.up; up != nil && up.restore != nil && p == m.current && p.allReady() {
		disarm(up.restore)
		up.restore = nil
		m.stopNewMaster(up, syscall.SIGQUIT, m.cfg.Worker.StopTimeout+newMasterGrace)
	}
}

func (m *Master) onRestoreTimeout(up *upgrade, t *timer) {
	if m.up != up || up.restore != t {
		return
	}
	up.restore = nil
	m.log.Warn("rolling back: the old workers are not all ready in time; asking the new master to stop anyway", "new_pid", up.pid)
	m.stopNewMaster(up, syscall.SIGQUIT, m.cfg.Worker.StopTimeout+newMasterGrace)
}
