//go:build linux

package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/config"
)

// Probation: a new generation is on trial before it replaces the old one, and the old one
// serves beside it all along, so that failing it costs nothing. Two kinds:
//
//   - a reload's new pool, from the moment every new worker is ready until reload.soak
//     has passed and the health check (if any) has passed: then the old workers retire
//     (commitReload);
//   - a new master's first pool, from the moment every worker is ready until its old
//     master commits (after upgrade.soak, or the operator's commit): the new master says
//     "ready" to its old master only once the health check (if any) has passed, and the
//     old master's "committing" ends the trial.
//
// During it, the generation fails (the reload fails; the new master reports the reason
// and exits, which the old master rolls back) when one of its workers exits for any
// reason, reports ERRNO= to the notify socket, or the health check fails
// health.check_failures times in a row. After it, a worker that exits is restarted with
// backoff, as always.
type probation struct {
	pool    *pool
	health  config.Health
	reload  bool      // a reload's (else a new master's first pool)
	started time.Time // when every worker of the pool was ready

	soak     *timer // tReloadSoak, a reload's soak; nil once it ran out (a new master's old master times its soak)
	soakOver bool

	next    *timer // tCheck: the next run of the check
	seq     int    // runs started
	running int    // seq of the run in flight; 0 = none
	fails   int    // failed runs in a row
	passed  bool   // the last run passed
	last    string // the last run's result, for baton status and the reason
}

// checkDone: a run of the health check ended. seq names the run; a result for a run, or a
// probation, that is no longer waited for is dropped.
type checkDone struct {
	pr  *probation
	seq int
	err error  // nil: exit status 0
	out string // the end of its output, printable
}

func (checkDone) eventName() string { return "check-done" }

// checkRun is one run of the health check, as the system starts it.
type checkRun struct {
	pr      *probation
	seq     int
	argv    []string
	env     []string
	dir     string
	pool    *pool
	timeout time.Duration
}

// startProbation puts p on trial. soak is a reload's soak (a new master's is timed by its
// old master).
func (m *Master) startProbation(p *pool, h config.Health, reload bool, soak time.Duration) *probation {
	pr := &probation{pool: p, health: h, reload: reload, started: m.sys.now(), soakOver: soak <= 0}
	if !pr.soakOver {
		pr.soak = m.arm(&timer{kind: tReloadSoak, d: soak, pr: pr})
	}
	what := "new master's workers"
	if reload {
		what = "reload's new workers"
	}
	m.log.Info("probation: the "+what+" are on trial", "pool", p.id, "soak", soak, "check", h.On())
	if h.On() {
		m.runCheck(pr)
	}
	return pr
}

// probationBound is the longest a trial under c can last: a reload's soak and, with a
// check, as many runs as it takes to fail, each with its pause, and a last one that passes
// after the soak.
func probationBound(c *config.Config, reload bool) time.Duration {
	var d time.Duration
	if reload {
		d = c.Reload.Soak
	}
	if h := c.Health; h.On() {
		d += time.Duration(h.CheckFailures)*(h.CheckTimeout+h.CheckInterval) + h.CheckTimeout
	}
	return d
}

// onProbation returns the probation p is on, if any.
func (m *Master) onProbation(p *pool) *probation {
	if r := m.reload; r != nil && r.probation != nil && r.probation.pool == p {
		return r.probation
	}
	if m.probation != nil && m.probation.pool == p {
		return m.probation
	}
	return nil
}

// endProbation stops what a trial still has going: its timers and the run in flight.
func (m *Master) endProbation(pr *probation) {
	if pr == nil {
		return
	}
	disarm(pr.soak)
	disarm(pr.next)
	pr.soak, pr.next = nil, nil
	pr.running = 0
	if pr.health.On() {
		m.sys.stopCheck(pr)
	}
}

func (m *Master) onReloadSoak(pr *probation, t *timer) {
	if pr.soak != t {
		return
	}
	pr.soak, pr.soakOver = nil, true
	m.advance(pr)
}

func (m *Master) onCheckTimer(pr *probation, t *timer) {
	if pr.next != t {
		return
	}
	pr.next = nil
	m.runCheck(pr)
}

// runCheck starts a run of pr's check, with the generation's identity in its environment.
func (m *Master) runCheck(pr *probation) {
	pr.seq++
	pr.running = pr.seq
	var pids []string
	for _, w := range pr.pool.live() {
		pids = append(pids, strconv.Itoa(w.pid))
	}
	env := append(dropEnv(m.sys.environ(), masterOnlyEnv...), pr.pool.cfg.Env...)
	env = append(env, "BATON_GENERATION="+strconv.Itoa(m.gen), "BATON_MASTER_PID="+strconv.Itoa(m.pid),
		"BATON_WORKER_PIDS="+strings.Join(pids, " "))
	m.sys.runCheck(checkRun{pr: pr, seq: pr.seq, argv: pr.health.Check, env: env, dir: pr.pool.cfg.Dir,
		pool: pr.pool, timeout: pr.health.CheckTimeout})
}

func (m *Master) onCheckDone(ev checkDone) {
	pr := ev.pr
	if pr.running != ev.seq || m.onProbation(pr.pool) != pr {
		return
	}
	pr.running = 0
	if ev.err == nil {
		pr.fails, pr.passed, pr.last = 0, true, "passed"
		m.log.Debug("health check passed", "pool", pr.pool.id)
	} else {
		pr.fails++
		pr.passed = false
		pr.last = ev.err.Error()
		if ev.out != "" {
			pr.last += ": " + ev.out
		}
		m.log.Warn("health check failed", "pool", pr.pool.id, "reason", pr.last, "in_a_row", pr.fails, "fail_at", pr.health.CheckFailures)
		if pr.fails >= pr.health.CheckFailures {
			m.failProbation(pr, fmt.Sprintf("health check failed %d time(s) in a row: %s", pr.fails, pr.last))
			return
		}
	}
	pr.next = m.arm(&timer{kind: tCheck, d: pr.health.CheckInterval, pr: pr})
	m.advance(pr)
}

// advance moves a trial on when what it waits for is there: a reload commits once its
// soak is over and the check has passed; a new master tells its old master it is ready
// once the check has passed.
func (m *Master) advance(pr *probation) {
	if pr.health.On() && !pr.passed {
		return
	}
	switch {
	case pr.reload:
		if r := m.reload; pr.soakOver && r != nil && r.probation == pr {
			if r.roll != nil && !r.roll.done(r.pool) {
				m.rollOn(r) // the canary passed
				return
			}
			m.commitReload()
		}
	case !pr.soakOver:
	case m.uproll != nil && m.uproll.trial && m.probation == pr:
		m.upRollReport() // a rolling upgrade's canary passed
	case m.role == roleJoining && m.probation == pr:
		m.tellReady()
	}
}

// failProbation fails the generation on trial: a reload fails (the old workers serve on),
// a new master gives up (its old master rolls back).
func (m *Master) failProbation(pr *probation, reason string) {
	m.log.Error("probation failed: "+reason, "pool", pr.pool.id, "event", "probation-failed")
	switch {
	case pr.reload:
		m.reloadWorkerFailed(reason)
	default:
		m.failStart(reason)
	}
}

// onWorkerErrno is a worker's ERRNO=: during probation it fails the generation; otherwise
// it is logged, and kept for baton status.
func (m *Master) onWorkerErrno(w *worker, v string) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 4095 {
		m.rate.notifyBad.log(m, "worker's ERRNO= is not an error number; ignored", "worker", w.slot, "worker_pid", w.pid, "errno", cleanText(v))
		return
	}
	reason := fmt.Sprintf("worker %d (pid %d) reported ERRNO=%d", w.slot, w.pid, n)
	if w.status != "" {
		reason += ": " + cleanText(w.status)
	}
	if pr := m.onProbation(w.pool); pr != nil && (w.state == workerReady || w.state == workerStarting) {
		m.failProbation(pr, reason+" during probation")
		return
	}
	m.rate.workerErrno.log(m, "worker reported an error: "+reason, "worker", w.slot, "worker_pid", w.pid)
}

// describe says how a trial goes, for baton status.
func (pr *probation) describe() string {
	var parts []string
	if pr.soak != nil {
		parts = append(parts, "soak running")
	}
	if pr.health.On() {
		switch {
		case pr.last == "" && pr.running != 0:
			parts = append(parts, "first health check running")
		case pr.passed:
			parts = append(parts, "health check passed")
		case pr.last != "":
			parts = append(parts, fmt.Sprintf("health check failing (%d of %d): %s", pr.fails, pr.health.CheckFailures, pr.last))
		}
	}
	return strings.Join(parts, ", ")
}
