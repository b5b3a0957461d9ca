//go:build linux

package supervisor

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/sdnotify"
)

// The master's state machine, without processes: every role, reached the way the world
// reaches it, meets every kind of event (STATES.md is the same table in prose).

// reach builds a master in role r under systemd, through real events from the start.
func reach(t testing.TB, r role, edit ...func(*config.Config)) (*Master, *fakeSystem) {
	joining := r == roleJoining || r == roleAwaitingCommit
	m, s := testMaster(t, joining, true, func(c *config.Config) {
		for _, e := range edit {
			e(c)
		}
	})
	m.start()
	switch r {
	case roleStarting, roleJoining:
		return m, s
	}
	readyAll(m)
	s.answerChecks(m, nil) // a new master's first check
	switch r {
	case roleServing, roleAwaitingCommit:
	case roleStopping:
		m.handle(sigEvent{syscall.SIGQUIT})
	default: // an old master's roles
		m.handle(sigEvent{syscall.SIGUSR2})
		if r == roleUpgrading {
			break
		}
		m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
		switch r {
		case roleRollingBack:
			m.handle(controlEvent{req: ControlRequest{Verb: "rollback"}, reply: func(ControlReply) {}})
		case roleCommitting, roleHandingOver:
			s.fire(s.armedOf(tSoak)[0])
			if r == roleHandingOver {
				exitRetiring(m)
			}
		}
	}
	if m.role != r {
		t.Fatalf("reach(%s): got to %s", r, m.role)
	}
	return m, s
}

// kinds of events, each built for the master as it is (a stale event where its target does
// not exist: it must change nothing).
var eventKinds = []struct {
	name string
	do   func(m *Master, s *fakeSystem)
}{
	{"HUP", func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGHUP}) }},
	{"USR2", func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGUSR2}) }},
	{"WINCH", func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGWINCH}) }},
	{"QUIT", func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGQUIT}) }},
	{"QUIT+active", quitAnswered(unitState{})},
	{"QUIT+stopping", quitAnswered(unitState{stopping: true})},
	{"QUIT+unknown", quitAnswered(unitState{err: fmt.Errorf("no D-Bus")})},
	{"TERM", func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGTERM}) }},
	{"USR1", func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGUSR1}) }},
	{"ready", func(m *Master, s *fakeSystem) { readyAll(m) }},
	{"crash", func(m *Master, s *fakeSystem) {
		if ws := s.workers(m.current); len(ws) > 0 {
			m.handle(workerExit{w: ws[0], status: exitStatus{known: true, code: 1}})
		}
	}},
	{"drain", func(m *Master, s *fakeSystem) { exitRetiring(m) }},
	{"start-timeout", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tWorkerStart); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"kill-timeout", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tWorkerKill); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"new-ready", func(m *Master, s *fakeSystem) { m.handle(newMasterMsg{upOr(m), handoffMsg{Type: "ready"}}) }},
	{"new-exit", func(m *Master, s *fakeSystem) {
		up := upOr(m)
		m.handle(newMasterMsg{up, handoffMsg{Type: "exit", Code: 1, Reason: "bad config"}})
		m.handle(newMasterExited{up: up})
	}},
	{"new-progress", func(m *Master, s *fakeSystem) {
		up := upOr(m)
		m.handle(newMasterMsg{up, handoffMsg{Type: "progress", Progress: &MasterSnapshot{PID: up.pid, Generation: 2, State: "joining", Ready: 1, Wanted: 2}}})
	}},
	{"new-progress-bad", func(m *Master, s *fakeSystem) {
		up := upOr(m)
		m.handle(newMasterMsg{up, handoffMsg{Type: "progress", Progress: &MasterSnapshot{PID: up.pid + 1, Generation: 2, Ready: 3, Wanted: 2}}})
	}},
	{"new-killed", func(m *Master, s *fakeSystem) { m.handle(newMasterExited{up: upOr(m), how: "killed by SIGKILL"}) }},
	{"progress-timer", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tProgress); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"upgrade-timeout", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tUpgradeReady); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"soak", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tSoak); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"spread", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tSpread); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"old-commit", func(m *Master, s *fakeSystem) { m.handle(oldMasterMsg{parentOr(m), handoffMsg{Type: "commit"}}) }},
	{"new-batch", func(m *Master, s *fakeSystem) {
		m.handle(newMasterMsg{upOr(m), handoffMsg{Type: "batch", Slots: []int{1, 99, -1}}})
	}},
	{"old-go", func(m *Master, s *fakeSystem) { m.handle(oldMasterMsg{parentOr(m), handoffMsg{Type: "go"}}) }},
	{"old-committing", func(m *Master, s *fakeSystem) {
		m.handle(oldMasterMsg{parentOr(m), handoffMsg{Type: "committing"}})
	}},
	{"errno", func(m *Master, s *fakeSystem) {
		if ws := s.workers(m.current); len(ws) > 0 {
			m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(ws[0].pid), Fields: []sdnotify.Field{{Key: "ERRNO", Value: "5"}}}})
		}
	}},
	{"check-pass", func(m *Master, s *fakeSystem) { s.answerChecks(m, nil) }},
	{"check-fail", func(m *Master, s *fakeSystem) {
		for range 3 { // check_failures
			if ts := s.armedOf(tCheck); len(ts) > 0 {
				s.fire(ts[0])
			}
			s.answerChecks(m, fmt.Errorf("exit status 1"))
		}
	}},
	{"reload-soak", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tReloadSoak); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"old-gone", func(m *Master, s *fakeSystem) { m.handle(oldMasterGone{parentOr(m)}) }},
	{"old-gone-main", func(m *Master, s *fakeSystem) {
		m.handle(oldMasterGone{parentOr(m)})
		for _, p := range s.waits {
			m.handle(becameMain{p: p, mainPID: m.pid})
		}
		s.waits = nil
	}},
	{"config-ok", func(m *Master, s *fakeSystem) {
		for _, seq := range s.loads {
			m.handle(configLoaded{seq: seq, cfg: m.cfg, stamp: "1"})
		}
		s.loads = nil
	}},
	{"handover-ok", func(m *Master, s *fakeSystem) {
		for _, up := range s.hands {
			m.handle(handOverDone{up: up})
		}
		s.hands = nil
	}},
	{"handover-refused", func(m *Master, s *fakeSystem) {
		for _, up := range s.hands {
			m.handle(handOverDone{up: up, err: fmt.Errorf("barrier timed out"), mainPID: m.pid})
		}
		s.hands = nil
	}},
	// The per-worker watchdog (watchdog.go): the first live worker of the master's pool.
	{"watchdog-ping", workerSays("WATCHDOG", "1")},
	{"watchdog-trigger", workerSays("WATCHDOG", "trigger")},
	{"watchdog-trigger+exit", func(m *Master, s *fakeSystem) {
		if ws := s.workers(m.current); len(ws) > 0 {
			workerSays("WATCHDOG", "trigger")(m, s)
			m.handle(workerExit{w: ws[0], status: exitStatus{known: true, signal: syscall.SIGTERM}})
		}
	}},
	{"watchdog-usec", workerSays("WATCHDOG_USEC", "2000000")},
	{"watchdog-usec-bad", workerSays("WATCHDOG_USEC", "0")},
	{"extend-timeout", workerSays("EXTEND_TIMEOUT_USEC", "60000000")},
	{"worker-watchdog", func(m *Master, s *fakeSystem) {
		if ts := s.armedOf(tWorkerWatchdog); len(ts) > 0 {
			s.fire(ts[0])
		}
	}},
	{"ctl-reload", ctl("reload")},
	{"ctl-upgrade", ctl("upgrade")},
	{"ctl-rollback", ctl("rollback")},
	{"ctl-commit", ctl("commit")},
	{"ctl-stop", ctl("stop")},
	{"ctl-status", ctl("status")},
}

// workerSays is a datagram KEY=value from the first live worker of the master's pool.
func workerSays(key, value string) func(m *Master, s *fakeSystem) {
	return func(m *Master, s *fakeSystem) {
		if ws := s.workers(m.current); len(ws) > 0 {
			m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(ws[0].pid), Fields: []sdnotify.Field{{Key: key, Value: value}}}})
		}
	}
}

// withWatchdog turns the per-worker watchdog on.
func withWatchdog(c *config.Config) { c.Worker.Watchdog = 10 * time.Second }

// quitAnswered is QUIT, then systemd's answer to whether it stops the unit, if asked.
func quitAnswered(ev unitState) func(m *Master, s *fakeSystem) {
	return func(m *Master, s *fakeSystem) {
		m.handle(sigEvent{syscall.SIGQUIT})
		answer(m, s, ev)
	}
}

// answer answers the master's questions to systemd whether it stops the unit.
func answer(m *Master, s *fakeSystem, ev unitState) {
	for ; s.asks > 0; s.asks-- {
		m.handle(ev)
	}
}

func ctl(verb string) func(m *Master, s *fakeSystem) {
	return func(m *Master, s *fakeSystem) {
		m.handle(controlEvent{req: ControlRequest{Verb: verb}, reply: func(ControlReply) {}})
	}
}

// upOr is the upgrade in flight, or one that is not (a stale event).
func upOr(m *Master) *upgrade {
	if m.up != nil {
		return m.up
	}
	return &upgrade{pid: 9999, link: &fakeLink{}}
}

func parentOr(m *Master) *parent {
	if m.parent != nil {
		return m.parent
	}
	return &parent{link: &fakeLink{}}
}

// wantRole is the table: the role a master in the row's role is in after the column's
// event. A missing cell means: the role does not change.
var wantRole = map[role]map[string]role{
	roleStarting: {
		"QUIT": roleStopping, "QUIT+active": roleStopping, "QUIT+stopping": roleStopping, "QUIT+unknown": roleStopping,
		"TERM": roleStopping, "ctl-stop": roleStopping, "ready": roleServing,
	},
	roleServing: {
		"USR2": roleUpgrading, "ctl-upgrade": roleUpgrading,
		"QUIT": roleStopping, "QUIT+active": roleStopping, "QUIT+stopping": roleStopping, "QUIT+unknown": roleStopping,
		"TERM": roleStopping, "ctl-stop": roleStopping,
	},
	// QUIT alone: systemd is asked whether it stops the unit; nothing changes until it answers.
	// ctl-commit: the commit waits for the new master to be ready.
	roleUpgrading: {
		"new-ready": roleSoaking, "new-exit": roleServing, "new-killed": roleServing, "ctl-rollback": roleRollingBack,
		"QUIT+stopping": roleStopping, "TERM": roleStopping, "ctl-stop": roleStopping,
	},
	roleSoaking: {
		"QUIT+active": roleCommitting, "QUIT+unknown": roleCommitting, "QUIT+stopping": roleStopping,
		"soak": roleCommitting, "ctl-commit": roleCommitting, "new-exit": roleServing, "new-killed": roleServing,
		"ctl-rollback": roleRollingBack, "TERM": roleStopping, "ctl-stop": roleStopping,
	},
	roleCommitting: {
		"drain": roleHandingOver, "new-exit": roleServing, "new-killed": roleServing, "ctl-rollback": roleRollingBack,
		"QUIT+stopping": roleStopping, "TERM": roleStopping, "ctl-stop": roleStopping,
	},
	roleHandingOver: {
		"handover-ok": roleExited, "handover-refused": roleRollingBack, "new-exit": roleServing, "new-killed": roleServing,
	},
	roleRollingBack: {
		"new-exit": roleServing, "new-killed": roleServing, "TERM": roleStopping, "ctl-stop": roleStopping,
	},
	// A worker's watchdog failure is a failure like a crash (watchdog-trigger+exit); the
	// timeout or the trigger alone only stops the worker, and its exit decides, but for a
	// generation on probation (awaiting-commit), which fails at the miss, as at an ERRNO=.
	roleJoining: {
		"ready": roleAwaitingCommit, "crash": roleStopping, "watchdog-trigger+exit": roleStopping, "TERM": roleStopping,
		"QUIT": roleStopping, "QUIT+active": roleStopping, "QUIT+stopping": roleStopping, "QUIT+unknown": roleStopping,
		"old-commit": roleStarting, "old-gone-main": roleStarting, "ctl-stop": roleStopping,
	},
	// crash, errno, check-fail: probation failed: the new master gives up (the old one rolls back).
	roleAwaitingCommit: {
		"crash": roleStopping, "errno": roleStopping, "watchdog-trigger+exit": roleStopping,
		"watchdog-trigger": roleStopping, "worker-watchdog": roleStopping, // on probation: fails at the miss
		"old-commit": roleServing, "old-gone-main": roleServing, "TERM": roleStopping,
		"QUIT": roleStopping, "QUIT+active": roleStopping, "QUIT+stopping": roleStopping, "QUIT+unknown": roleStopping,
		"ctl-stop": roleStopping,
	},
	roleStopping: {
		"drain": roleExited,
	},
}

// wantRoleChecked is where wantRole differs with a health check ([health] check): a new
// master whose workers are ready waits for the check to pass before it is ready.
var wantRoleChecked = map[role]map[string]role{
	roleJoining:        {"ready": roleJoining},
	roleAwaitingCommit: {"check-fail": roleStopping},
}

// withCheck configures a health check and a reload soak.
func withCheck(c *config.Config) {
	c.Health.Check = []string{"/usr/local/bin/smoke", "--port", "8080"}
	c.Reload.Soak = 5 * time.Second
}

// TestTransitions runs the table with the per-worker watchdog on, without and with a health
// check, and with the old workers' stop signals all at once and spread over stop_spread (a
// commit's, a stop's old workers then still serve, one by one, while the events arrive).
func TestTransitions(t *testing.T) {
	for _, spread := range []time.Duration{0, 10 * time.Second} {
		for _, checked := range []bool{false, true} {
			for r := roleStarting; r < roleExited; r++ {
				for _, k := range eventKinds {
					name := fmt.Sprintf("spread=%s/%s/%s", spread, r, k.name)
					edit := func(c *config.Config) { withWatchdog(c); c.Worker.StopSpread = spread }
					if checked {
						name, edit = "checked/"+name, func(c *config.Config) { withCheck(c); withWatchdog(c); c.Worker.StopSpread = spread }
					}
					t.Run(name, func(t *testing.T) {
						m, s := reach(t, r, edit)
						k.do(m, s)
						want, ok := wantRole[r][k.name]
						if w, ok2 := wantRoleChecked[r][k.name]; checked && ok2 {
							want, ok = w, true
						}
						if !ok {
							want = r
						}
						if m.role != want {
							t.Errorf("%s + %s: role %s, want %s\neffects: %q", r, k.name, m.role, want, s.effects)
						}
						if len(s.bugs) > 0 {
							t.Errorf("%s + %s: %q", r, k.name, s.bugs)
						}
						checkInvariants(t, m, s)
					})
				}
			}
		}
	}
}

// checkInvariants is what must hold after every event, whatever happened.
func checkInvariants(t testing.TB, m *Master, s *fakeSystem) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invariant: "+format+"\nrole %s, effects %q", append(args, m.role, s.effects)...)
	}
	if len(s.bugs) > 0 {
		fail("%q", s.bugs)
	}
	// A control client gets at most one pending line, before its result, and one result.
	for _, rs := range s.asked {
		for i, r := range *rs {
			if r.Pending && i > 0 || !r.Pending && i < len(*rs)-1 {
				fail("control replies %+v", *rs)
			}
		}
	}
	// At most one upgrade in flight, and it is what the role says.
	if m.role.upgrading() != (m.up != nil) && !(m.role == roleStopping || m.role == roleExited) {
		fail("up = %v in role %s", m.up != nil, m.role)
	}
	if m.up != nil && m.parent != nil {
		fail("an old master's upgrade in flight on a new master not committed")
	}
	if (m.role == roleJoining || m.role == roleAwaitingCommit) != (m.parent != nil) && m.role != roleStopping && m.role != roleExited {
		fail("parent = %v in role %s", m.parent != nil, m.role)
	}
	// The pid file names the master in charge; during its upgrade the old master is in
	// .oldbin (the new master wrote the pid file).
	if m.parent == nil && m.role != roleExited {
		switch {
		case m.role.upgrading() && m.role != roleHandingOver:
			if s.pidfile[testPIDFile+OldbinSuffix] != m.pid {
				fail("pid file .oldbin does not name the old master: %v", s.pidfile)
			}
		case m.role == roleStarting || m.role == roleServing:
			if s.pidfile[testPIDFile] != m.pid {
				fail("pid file does not name the master in charge: %v", s.pidfile)
			}
		}
	}
	// MAINPID= is sent only by an old master handing over.
	if s.mainPID != 0 && m.up == nil && m.role != roleExited && m.role != roleServing && m.role != roleStopping {
		fail("MAINPID=%d sent, role %s", s.mainPID, m.role)
	}
	// At most one reload, and its pool is not retiring.
	if r := m.reload; r != nil && r.pool != nil && r.pool.retiring {
		fail("the reload's pool is retiring")
	}
	// Every worker of a retired pool has been told to stop, with its kill armed, or waits
	// for its turn in the pool's stop_spread, serving, the next signal armed.
	for _, p := range m.retiring {
		if sp := p.spread; sp != nil && (sp.timer == nil || !slices.Contains(s.armed, sp.timer) || sp.next < 1 || sp.next >= len(sp.ws)) {
			fail("pool %d's stop_spread has no next signal armed (%d of %d sent)", p.id, sp.next, len(sp.ws))
		}
		for _, w := range p.all() {
			if p.spread.holds(w) && w.state == workerReady {
				if !w.retired {
					fail("worker %d held by the stop_spread of retiring pool %d is not retired", w.pid, p.id)
				}
				continue
			}
			if w.state != workerStopping && w.state != workerLingering {
				fail("worker %d of retiring pool %d is %s", w.pid, p.id, w.state)
			}
			if !w.killed && (w.timer == nil || w.timer.kind != tWorkerKill || !slices.Contains(s.armed, w.timer)) {
				fail("worker %d of retiring pool %d has no kill timer armed", w.pid, p.id)
			}
		}
	}
	// A starting worker has its start timeout armed, no later than maxStartStretch start
	// timeouts after it started; a ready worker with a watchdog has it armed.
	for _, p := range m.allPools() {
		for _, w := range p.live() {
			if w.state == workerStarting && (w.timer == nil || !slices.Contains(s.armed, w.timer)) {
				fail("starting worker %d has no start timeout armed", w.pid)
			}
			if t := w.timer; w.state == workerStarting && t.at.Add(t.d).After(w.started.Add(maxStartStretch*p.cfg.StartTimeout)) {
				fail("starting worker %d: start deadline %s after its start", w.pid, t.at.Add(t.d).Sub(w.started))
			}
			if w.state == workerReady && w.watchdogInterval() > 0 && (w.timer == nil || w.timer.kind != tWorkerWatchdog || !slices.Contains(s.armed, w.timer)) {
				fail("ready worker %d has no watchdog armed", w.pid)
			}
		}
	}
	// A trial: a reload's whose new workers are all ready, or a new master's not committed
	// yet; with a check, its next run is either running or armed; a new master whose check
	// passed has said ready.
	var trials []*probation
	if r := m.reload; r != nil && r.probation != nil {
		if r.pool == nil || r.probation.pool != r.pool || (r.roll == nil && !r.pool.allReady()) || (r.roll != nil && !r.roll.batchReady(r.pool)) {
			fail("reload on trial before every new worker (of its canary) is ready")
		}
		trials = append(trials, r.probation)
	}
	if pr := m.probation; pr != nil {
		if m.parent == nil || (m.role != roleJoining && m.role != roleAwaitingCommit) {
			fail("a new master's trial in role %s (parent %v)", m.role, m.parent != nil)
		}
		if pr.passed && pr.soakOver && m.role == roleJoining && m.uproll == nil {
			fail("the check passed, and the new master did not say ready")
		}
		trials = append(trials, pr)
	}
	for _, pr := range trials {
		running := slices.ContainsFunc(s.checks, func(c checkRun) bool { return c.pr == pr })
		if pr.health.On() && running == (pr.next != nil) {
			fail("trial of pool %d: check running %v, next run armed %v", pr.pool.id, running, pr.next != nil)
		}
	}
	for _, c := range s.checks {
		if !slices.Contains(trials, c.pr) {
			fail("a check runs for a trial that is over")
		}
	}
	// Every armed timer belongs to something that still waits for it.
	for _, tm := range s.armed {
		if !timerOwned(m, tm) {
			fail("timer %s armed for something gone", tm.kind)
		}
	}
}

func timerOwned(m *Master, t *timer) bool {
	switch t.kind {
	case tWorkerStart, tWorkerKill:
		return t.w.timer == t && t.w.state != workerExited
	case tWorkerLinger:
		return t.w.linger == t && t.w.state == workerLingering
	case tWorkerWatchdog:
		return t.w.timer == t && t.w.state == workerReady
	case tRestart:
		return t.p.restart[t.slot-1] == t && !t.p.retiring
	case tUpgradeReady, tSoak:
		return m.up == t.up && t.up.timer == t
	case tNewMasterKill:
		return m.up == t.up && t.up.kill == t
	case tWatchdog:
		return m.wdTimer == t
	case tProgress:
		return m.progress.timer == t && m.parent != nil
	case tReloadSoak:
		return t.pr.soak == t && m.onProbation(t.pr.pool) == t.pr
	case tCheck:
		return t.pr.next == t && m.onProbation(t.pr.pool) == t.pr
	case tRestore:
		return m.up == t.up && t.up.restore == t && m.role == roleRollingBack
	case tRollBack:
		return m.reload != nil && m.reload.roll != nil && m.reload.roll.timer == t && m.reload.roll.back
	case tSpread:
		return t.p.spread != nil && t.p.spread.timer == t && slices.Contains(m.retiring, t.p)
	}
	return false
}

// TestRandomSequences drives masters through random sequences of events, of every kind,
// and checks the invariants after each one.
func TestRandomSequences(t *testing.T) {
	seqs, steps := 400, 80
	if testing.Short() {
		seqs = 50
	}
	for seed := range seqs {
		rng := rand.New(rand.NewPCG(uint64(seed), 8))
		start := []role{roleStarting, roleServing, roleJoining, roleSoaking}[seed%4]
		var edit []func(*config.Config)
		if seed%8 >= 4 {
			edit = append(edit, withWatchdog)
		}
		if seed%3 == 0 {
			edit = append(edit, withCheck) // probation with a check and a reload soak
		}
		if seed%5 < 2 {
			edit = append(edit, func(c *config.Config) { // rolling reloads and upgrades, with a canary every other time
				c.Worker.Count = 3
				c.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: 1, Canary: seed % 2}
			})
		}
		if seed%16 >= 8 {
			edit = append(edit, func(c *config.Config) {
				c.Worker.StopSpread = 10 * time.Second // old workers stop one by one
				c.Worker.Count = 3
			})
		}
		m, s := reach(t, start, edit...)
		var trail []string
		for range steps {
			if m.role == roleExited {
				break
			}
			before := m.metrics.counts.Clone()
			name := randomEvent(rng, m, s)
			trail = append(trail, name)
			if err := countersDown(before, m.metrics.counts); err != "" {
				t.Fatalf("seed %d, after %s: %s", seed, strings.Join(trail, " "), err)
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("seed %d: panic %v after %s", seed, p, strings.Join(trail, " "))
					}
				}()
				checkInvariants(&trailTB{TB: t, trail: trail, seed: seed}, m, s)
			}()
		}
	}
}

type trailTB struct {
	testing.TB
	trail []string
	seed  int
}

func (t *trailTB) Fatalf(format string, args ...any) {
	t.TB.Helper()
	t.TB.Fatalf("seed %d, after %s:\n"+format, append([]any{t.seed, strings.Join(t.trail, " ")}, args...)...)
}

// randomEvent picks an event that can happen to m now and delivers it.
func randomEvent(rng *rand.Rand, m *Master, s *fakeSystem) string {
	var all []*worker
	for _, p := range m.allPools() {
		all = append(all, p.live()...)
	}
	switch n := rng.IntN(15); {
	case n == 0 && len(s.armed) > 0:
		t := s.armed[rng.IntN(len(s.armed))]
		s.fire(t)
		return "timer:" + t.kind.String()
	case n == 1 && len(all) > 0:
		w := all[rng.IntN(len(all))]
		if rng.IntN(3) == 0 {
			s.lingers[w.pid] = true
		}
		m.handle(workerExit{w: w, status: exitStatus{known: true, code: rng.IntN(2)}})
		return fmt.Sprintf("exit:%d", w.pid)
	case n == 2 && len(all) > 0:
		w := all[rng.IntN(len(all))]
		m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "READY", Value: "1"}}}})
		return fmt.Sprintf("ready:%d", w.pid)
	case n == 3:
		for pid := range s.lingers {
			delete(s.lingers, pid)
		}
		return "lingerers-gone"
	case n == 4 && len(s.loads) > 0:
		seq := s.loads[0]
		s.loads = s.loads[1:]
		ev := configLoaded{seq: seq, cfg: m.cfg}
		if rng.IntN(3) == 0 {
			ev.cfg, ev.err = nil, fmt.Errorf("web.toml:8: worker.count: bad")
		}
		m.handle(ev)
		return "config-loaded"
	case n == 5 && len(s.hands) > 0:
		up := s.hands[0]
		s.hands = s.hands[1:]
		ev := handOverDone{up: up}
		switch rng.IntN(3) {
		case 1:
			ev.err, ev.mainPID = fmt.Errorf("barrier"), m.pid
		case 2:
			ev.err = fmt.Errorf("barrier")
		}
		m.handle(ev)
		return "hand-over-done"
	case n == 6 && m.up != nil:
		k := []string{"ready", "error", "exit", "exited", "progress", "batch"}[rng.IntN(6)]
		switch k {
		case "batch":
			m.handle(newMasterMsg{m.up, handoffMsg{Type: k, Slots: []int{1 + rng.IntN(3)}}})
		case "exited":
			m.handle(newMasterExited{up: m.up, how: "killed by SIGKILL"})
		case "progress":
			ready := rng.IntN(4)
			m.handle(newMasterMsg{m.up, handoffMsg{Type: k, Progress: &MasterSnapshot{PID: m.up.pid + rng.IntN(2), Generation: 2, Ready: ready, Wanted: 2}}})
		default:
			m.handle(newMasterMsg{m.up, handoffMsg{Type: k, Reason: "x"}})
		}
		return "new-" + k
	case n == 7 && m.parent != nil:
		switch rng.IntN(5) {
		case 4:
			m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "go"}})
			return "old-go"
		case 3:
			m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "committing"}})
			return "old-committing"
		case 0:
			m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "commit"}})
			return "old-commit"
		case 1:
			m.handle(oldMasterGone{m.parent})
			return "old-gone"
		}
		for _, p := range s.waits {
			m.handle(becameMain{p: p, mainPID: m.pid})
		}
		s.waits = nil
		return "became-main"
	case n == 8:
		verb := []string{"reload", "upgrade", "rollback", "commit", "stop", "status"}[rng.IntN(6)]
		rs := new(replies)
		s.asked = append(s.asked, rs)
		m.handle(controlEvent{req: ControlRequest{Verb: verb, Wait: rng.IntN(2) == 0, Progress: rng.IntN(2) == 0}, reply: rs.reply})
		return "ctl-" + verb
	case n == 9:
		s.failNew = rng.IntN(4) == 0
	case n == 11 && len(s.checks) > 0:
		var err error
		if rng.IntN(2) == 0 {
			err = fmt.Errorf("exit status 1")
		}
		s.answerChecks(m, err)
		return fmt.Sprintf("check-done:%v", err == nil)
	case n == 12 && len(all) > 0:
		w := all[rng.IntN(len(all))]
		m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "ERRNO", Value: "5"}}}})
		return fmt.Sprintf("errno:%d", w.pid)
	case n == 13 && len(all) > 0:
		// What a worker may say of its watchdog, well or badly.
		w := all[rng.IntN(len(all))]
		f := []sdnotify.Field{
			{Key: "WATCHDOG", Value: "1"}, {Key: "WATCHDOG", Value: "1"}, {Key: "WATCHDOG", Value: "trigger"},
			{Key: "WATCHDOG", Value: "2"}, {Key: "WATCHDOG_USEC", Value: "500000"}, {Key: "WATCHDOG_USEC", Value: "0"},
			{Key: "WATCHDOG_USEC", Value: "99999999999999999999"}, {Key: "EXTEND_TIMEOUT_USEC", Value: "45000000"},
			{Key: "EXTEND_TIMEOUT_USEC", Value: "9223372036854775"}, {Key: "EXTEND_TIMEOUT_USEC", Value: "-1"},
		}[rng.IntN(10)]
		s.clock = s.clock.Add(time.Duration(rng.IntN(20)) * time.Second)
		m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{f}}})
		return fmt.Sprintf("%s=%s:%d", f.Key, f.Value, w.pid)
	case n == 10 && s.asks > 0:
		ev := []unitState{{}, {stopping: true}, {err: fmt.Errorf("no D-Bus")}}[rng.IntN(3)]
		answer(m, s, ev)
		return fmt.Sprintf("unit-state:%v/%v", ev.stopping, ev.err != nil)
	}
	sig := []syscall.Signal{syscall.SIGHUP, syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1}[rng.IntN(8)]
	if sig == syscall.SIGTERM && rng.IntN(3) > 0 {
		sig = syscall.SIGHUP // stops end sequences: fewer of them
	}
	m.handle(sigEvent{sig})
	return signalName(sig)
}

// The faults of issue 8, each as the sequence that showed it.

func TestReadyStartedIsReadyAtOnce(t *testing.T) {
	for _, joining := range []bool{false, true} {
		m, s := testMaster(t, joining, true, func(c *config.Config) { c.Worker.Ready = config.ReadyStarted })
		m.start()
		want := roleServing
		if joining {
			want = roleAwaitingCommit
		}
		if m.role != want {
			t.Errorf("joining=%v: role %s after the workers started, want %s", joining, m.role, want)
		}
		if !joining && !hasEffect(s, 0, "notify READY=1") {
			t.Errorf("no READY=1: %q", s.effects)
		}
		if joining && !hasEffect(s, 0, "send O ready") {
			t.Errorf("the old master was not told: %q", s.effects)
		}
	}
}

func TestHUPDuringCommitDoesNotCancelIt(t *testing.T) {
	m, s := reach(t, roleCommitting)
	n := len(s.effects)
	m.handle(sigEvent{syscall.SIGHUP})
	if m.role != roleCommitting {
		t.Fatalf("role %s after HUP, want committing", m.role)
	}
	if hasEffect(s, n, "start worker") {
		t.Errorf("HUP during a commit started workers: %q", s.effects[n:])
	}
	if !hasEffect(s, n, "notify RELOADING=1") || !hasEffect(s, n, "notify READY=1") {
		t.Errorf("systemd's reload is not answered: %q", s.effects[n:])
	}
	exitRetiring(m)
	if m.role != roleHandingOver {
		t.Fatalf("the commit did not go on: role %s", m.role)
	}
}

func TestHUPToNewMasterBeforeReady(t *testing.T) {
	m, s := reach(t, roleJoining)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	readyAll(m) // the first pool and the reload's
	if m.role != roleAwaitingCommit {
		t.Fatalf("role %s, want awaiting-commit", m.role)
	}
	if !hasEffect(s, 0, "send O ready") {
		t.Errorf("the old master was never told: %q", s.effects)
	}
}

func TestLingeringGroupIsStopped(t *testing.T) {
	m, s := reach(t, roleServing)
	w := m.current.live()[0]
	s.lingers[w.pid] = true // a shell's child, a server's own worker
	n := len(s.effects)
	m.handle(workerExit{w: w, status: exitStatus{known: true, code: 0}})
	if !hasEffect(s, n, fmt.Sprintf("signal %d TERM", w.pid)) {
		t.Fatalf("the group of an exited worker was not stopped: %q", s.effects[n:])
	}
	if hasEffect(s, n, fmt.Sprintf("reap %d", w.pid)) {
		t.Fatalf("reaped while its group lives: its id could be reused")
	}
	kill := w.timer
	s.fire(kill)
	if !hasEffect(s, n, fmt.Sprintf("signal %d KILL", w.pid)) || !hasEffect(s, n, fmt.Sprintf("reap %d", w.pid)) {
		t.Fatalf("not killed and reaped at the stop timeout: %q", s.effects[n:])
	}
	checkInvariants(t, m, s)
}

func TestNoSignalToNewMasterAfterMAINPID(t *testing.T) {
	m, s := reach(t, roleHandingOver)
	n := len(s.effects)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT, syscall.SIGHUP} {
		m.handle(sigEvent{sig})
	}
	ctl("rollback")(m, s)
	ctl("stop")(m, s)
	if hasEffect(s, n, "signal N") {
		t.Fatalf("the new master was signalled after MAINPID=: %q", s.effects[n:])
	}
	// systemd did not confirm, and cannot say who is main: the new master is in charge.
	m.handle(handOverDone{up: m.up, err: fmt.Errorf("barrier timed out")})
	if m.role != roleExited || !hasEffect(s, n, "send N commit") {
		t.Fatalf("role %s: the commit was not finished: %q", m.role, s.effects[n:])
	}
}

func TestWatchdogAfterRecovery(t *testing.T) {
	m, s := reach(t, roleServing)
	for range crashLoop + 1 {
		w := m.current.workers[0]
		m.handle(workerExit{w: w, status: exitStatus{known: true, code: 1}})
		s.fire(m.current.restart[0])
	}
	m.handle(workerExit{w: m.current.workers[1], status: exitStatus{known: true, code: 1}})
	m.current.failures[1] = crashLoop
	n := len(s.effects)
	m.watchdogPing()
	if hasEffect(s, n, "WATCHDOG=1") {
		t.Fatalf("a crash-looping pool pinged the watchdog")
	}
	readyAll(m)
	m.watchdogPing()
	if !hasEffect(s, n, "WATCHDOG=1") {
		t.Fatalf("a recovered pool does not ping the watchdog: failures %v", m.current.failures)
	}
}

func TestUpgradeTimeoutStopsBeforeKill(t *testing.T) {
	m, s := reach(t, roleUpgrading)
	n := len(s.effects)
	s.fire(s.armedOf(tUpgradeReady)[0])
	if !hasEffect(s, n, "signal N TERM") || hasEffect(s, n, "signal N KILL") {
		t.Fatalf("want TERM first: %q", s.effects[n:])
	}
	s.fire(s.armedOf(tNewMasterKill)[0])
	if !hasEffect(s, n, "signal N KILL") {
		t.Fatalf("no SIGKILL after the grace: %q", s.effects[n:])
	}
	m.handle(newMasterExited{up: m.up})
	if m.role != roleServing || !strings.Contains(m.lastErr, "not ready within") {
		t.Fatalf("role %s, last error %q", m.role, m.lastErr)
	}
}

func TestRollbackReasonIsNewMastersLastWord(t *testing.T) {
	m, _ := reach(t, roleUpgrading)
	m.handle(newMasterMsg{m.up, handoffMsg{Type: "exit", Code: 1, Reason: "web.toml:8: worker.count: must be 1..1024"}})
	m.handle(newMasterExited{up: m.up})
	if !strings.Contains(m.lastErr, "web.toml:8") || !strings.Contains(m.lastErr, "exit 1") {
		t.Fatalf("last error %q", m.lastErr)
	}
	m, _ = reach(t, roleUpgrading)
	m.handle(newMasterExited{up: m.up})
	if !strings.Contains(m.lastErr, "without a word") {
		t.Fatalf("last error %q", m.lastErr)
	}
}

func TestClaimedReloadReadTheFileAsItIs(t *testing.T) {
	m, s := reach(t, roleServing)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg, stamp: "v1"})
	readyAll(m)
	var got []ControlReply
	reply := func(r ControlReply) { got = append(got, r) }
	m.handle(controlEvent{req: ControlRequest{Verb: "reload", Wait: true}, reply: reply, stamp: "v2"})
	if len(got) != 0 || m.reload == nil {
		t.Fatalf("a reload of an older file was claimed: %+v", got)
	}
	m.handle(configLoaded{seq: s.loads[1], cfg: m.cfg, stamp: "v2"})
	readyAll(m)
	if len(got) != 1 || !got[0].OK {
		t.Fatalf("replies %+v", got)
	}
	// Unchanged file: the SIGHUP reload is the one the client waits for.
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[2], cfg: m.cfg, stamp: "v2"})
	readyAll(m)
	m.handle(controlEvent{req: ControlRequest{Verb: "reload", Wait: true}, reply: reply, stamp: "v2"})
	if len(got) != 2 || m.reload != nil {
		t.Fatalf("the SIGHUP reload was not claimed: %+v, reload %v", got, m.reload != nil)
	}
}

func TestStartTimeoutSendsStopSignalFirst(t *testing.T) {
	m, s := reach(t, roleStarting)
	w := m.current.live()[0]
	n := len(s.effects)
	s.fire(w.timer)
	if !hasEffect(s, n, fmt.Sprintf("signal %d TERM", w.pid)) || hasEffect(s, n, "KILL") {
		t.Fatalf("want the stop signal first: %q", s.effects[n:])
	}
	s.fire(w.timer)
	m.handle(workerExit{w: w, status: exitStatus{known: true, signal: syscall.SIGKILL}})
	if m.current.restart[0] == nil {
		t.Fatalf("a worker killed at its start timeout is not restarted")
	}
}

// TestOldMasterDiesBeforeCommit: under systemd the new master waits until systemd makes it
// main (the units' PIDFile=) before it says anything to systemd.
func TestOldMasterDiesBeforeCommit(t *testing.T) {
	m, s := reach(t, roleAwaitingCommit)
	n := len(s.effects)
	m.handle(oldMasterGone{m.parent})
	if m.role != roleAwaitingCommit || hasEffect(s, n, "notify") || len(s.waits) != 1 {
		t.Fatalf("role %s, effects %q: want a wait for systemd, nothing said", m.role, s.effects[n:])
	}
	m.handle(becameMain{p: s.waits[0], mainPID: m.pid})
	if m.role != roleServing || !hasEffect(s, n, "notify READY=1") {
		t.Fatalf("role %s, effects %q", m.role, s.effects[n:])
	}
	if pid, ok := s.pidfile[testPIDFile+OldbinSuffix]; ok {
		t.Errorf("pid file .oldbin still names the dead old master (%d)", pid)
	}
}

func TestNewMasterDropsListenersWhenInCharge(t *testing.T) {
	m, s := reach(t, roleAwaitingCommit)
	m.dropped = nil // (no real listeners in the fake) the rule: dropped only once in charge
	n := len(s.effects)
	m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "commit"}})
	if m.role != roleServing || !hasEffect(s, n, "notify READY=1") {
		t.Fatalf("role %s, effects %q", m.role, s.effects[n:])
	}
}

// systemctl stop during an upgrade whose ExecStop= could not reach the master: systemd
// sends KillSignal=SIGQUIT to its main process, the old master. Taken as a commit, it
// handed the service to a new master nobody stopped (labtest: TimeoutStopSec, SIGKILL,
// Result=timeout). The old master asks systemd first, and stops both generations.
func TestQUITWhileSystemdStopsTheUnit(t *testing.T) {
	for _, r := range []role{roleUpgrading, roleSoaking, roleCommitting} {
		t.Run(r.String(), func(t *testing.T) {
			m, s := reach(t, r)
			n := len(s.effects)
			m.handle(sigEvent{syscall.SIGQUIT})
			m.handle(sigEvent{syscall.SIGQUIT}) // KillSignal= and an operator's: one question
			if s.asks != 1 || m.role != r {
				t.Fatalf("after QUIT: %d questions to systemd, role %s; want 1, %s: %q", s.asks, m.role, r, s.effects[n:])
			}
			if r == roleUpgrading && m.up.quit {
				t.Fatal("QUIT was taken for a commit before systemd answered")
			}
			answer(m, s, unitState{stopping: true})
			if m.role != roleStopping {
				t.Fatalf("role %s after systemd said it stops the unit, want stopping", m.role)
			}
			if !hasEffect(s, n, "signal N QUIT") {
				t.Fatalf("the new master was not asked to stop: %q", s.effects[n:])
			}
			if s.mainPID != 0 {
				t.Fatalf("MAINPID=%d sent during a stop", s.mainPID)
			}
			up := m.up
			exitRetiring(m)
			m.handle(newMasterMsg{up, handoffMsg{Type: "exit", Reason: "QUIT before the upgrade was committed"}})
			m.handle(newMasterExited{up: up})
			if m.role != roleExited {
				t.Fatalf("role %s once both generations are gone, want exited: %q", m.role, s.effects[n:])
			}
		})
	}
}

// QUIT from an operator (the unit is active), or when systemd cannot be asked: nginx's
// commit, as before.
func TestQUITWhileSystemdRunsTheUnitCommits(t *testing.T) {
	for _, ev := range []unitState{{}, {err: fmt.Errorf("no D-Bus")}} {
		m, s := reach(t, roleSoaking)
		m.handle(sigEvent{syscall.SIGQUIT})
		answer(m, s, ev)
		if m.role != roleCommitting {
			t.Errorf("answer %+v: role %s, want committing", ev, m.role)
		}
		answer(m, s, unitState{stopping: true}) // a late, unasked answer changes nothing
		if m.role != roleCommitting {
			t.Errorf("an answer nobody waited for: role %s, want committing", m.role)
		}
	}
	// Off systemd nobody is asked.
	m, s := testMaster(t, false, false, nil)
	m.start()
	readyAll(m)
	m.handle(sigEvent{syscall.SIGUSR2})
	m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
	m.handle(sigEvent{syscall.SIGQUIT})
	if s.asks != 0 || m.role != roleCommitting {
		t.Errorf("off systemd: %d questions, role %s; want 0, committing", s.asks, m.role)
	}
}

// A reload whose config names another control_socket listens on the new path as soon as
// the config is read (`baton reload --wait -c FILE` dials it), and closes the old one,
// removing its file, when the reload is done; a failed reload closes what it opened.
func TestReloadMovesControlSocket(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", "")
	path := func(name string) string { return filepath.Join(dir, name) }
	m, s := testMaster(t, false, true, func(c *config.Config) { c.ControlSocket = path("a.sock") })
	var err error
	if m.controls, _, err = openControl(controlPaths(m.cfg), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeControls(m.controls) })
	m.start()
	readyAll(m)
	reloadTo := func(name string) {
		cfg := *m.cfg
		cfg.ControlSocket = path(name)
		m.handle(sigEvent{syscall.SIGHUP})
		m.handle(configLoaded{seq: s.loads[len(s.loads)-1], cfg: &cfg})
		if _, err := os.Lstat(path(name)); err != nil {
			t.Fatalf("no %s once the config naming it was read: %v", name, err)
		}
	}
	addrs := func() []string {
		var as []string
		for _, c := range m.controls {
			as = append(as, filepath.Base(c.l.Addr))
		}
		return as
	}

	reloadTo("b.sock")
	readyAll(m)
	if got := addrs(); !slices.Equal(got, []string{"b.sock"}) {
		t.Fatalf("control sockets after the reload: %q, want b.sock", got)
	}
	if _, err := os.Lstat(path("a.sock")); !os.IsNotExist(err) {
		t.Errorf("a.sock left after the reload: %v", err)
	}

	reloadTo("c.sock")
	m.handle(workerExit{w: m.reload.pool.live()[0], status: exitStatus{known: true, code: 1}})
	if m.reload != nil || !slices.Equal(addrs(), []string{"b.sock"}) {
		t.Fatalf("after a failed reload: reload %v, control sockets %q, want b.sock", m.reload != nil, addrs())
	}
	if _, err := os.Lstat(path("c.sock")); !os.IsNotExist(err) {
		t.Errorf("c.sock left after the failed reload: %v", err)
	}
}

// systemd's watchdog does not restart when the main process changes. A new master pinged
// only on its own timer (WatchdogSec/2 after it started), so upgrades back to back, each
// master living less than that, never pinged: the benchmark's series of 100 upgrades under
// systemd ended in a watchdog SIGABRT once each cycle took ~330 ms. Taking charge pings.
func TestTakingChargePingsWatchdog(t *testing.T) {
	for _, ev := range []string{"old-commit", "old-gone-main"} {
		m, s := reach(t, roleAwaitingCommit)
		n := len(s.effects)
		for _, k := range eventKinds {
			if k.name == ev {
				k.do(m, s)
			}
		}
		if m.role != roleServing || !hasEffect(s, n, "notify WATCHDOG=1") {
			t.Errorf("%s: role %s, effects %q; want serving and WATCHDOG=1", ev, m.role, s.effects[n:])
		}
	}
}

// TestJournalStreamWarning: a worker that runs without a journal stream of its own (no
// journald) is a warning, logged once per logEvery whatever the number of starts, and
// the worker serves as any other.
func TestJournalStreamWarning(t *testing.T) {
	m, s := testMaster(t, false, true, nil)
	var buf bytes.Buffer
	m.log = slog.New(slog.NewTextHandler(&buf, nil))
	s.logWarn = "start /bin/true: journal stream: connect: connection refused"
	m.start()
	readyAll(m)
	if m.role != roleServing {
		t.Fatalf("role %s, want serving", m.role)
	}
	const msg = "worker logs to the master's journal stream"
	if got := strings.Count(buf.String(), msg); got != 1 {
		t.Fatalf("%d warnings for 2 workers in one go, want 1:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), `err="start /bin/true: journal stream: connect: connection refused"`) {
		t.Errorf("the warning does not say why:\n%s", buf.String())
	}
	// A crash restart past logEvery: said again, with the count of what was left unsaid.
	s.clock = s.clock.Add(logEvery)
	m.handle(workerExit{w: m.current.workers[0], status: exitStatus{known: true, code: 1}})
	s.fire(m.current.restart[0])
	if got := strings.Count(buf.String(), msg); got != 2 || !strings.Contains(buf.String(), "suppressed=1") {
		t.Errorf("after %s: %d warnings, want 2, the second with suppressed=1:\n%s", logEvery, got, buf.String())
	}
	// A worker with its own stream says nothing.
	s.logWarn = ""
	buf.Reset()
	s.clock = s.clock.Add(logEvery)
	m.handle(workerExit{w: m.current.workers[1], status: exitStatus{known: true, code: 1}})
	s.fire(m.current.restart[1])
	if strings.Contains(buf.String(), msg) {
		t.Errorf("warned about a worker with its own stream:\n%s", buf.String())
	}
}

// TestRetiringPoolLooksAtGroupsOnce: the workers of a retiring pool exit in a burst; their
// groups are looked at in one pass over the process table, when the last has exited, and
// a group that lingers is still stopped and watched.
func TestRetiringPoolLooksAtGroupsOnce(t *testing.T) {
	m, s := reach(t, roleCommitting, func(c *config.Config) { c.Worker.Count = 3 })
	p := m.retiring[0]
	ws := p.live()
	if len(ws) != 3 {
		t.Fatalf("%d retiring workers, want 3", len(ws))
	}
	s.lingers[ws[1].pid] = true
	looks, n := s.groupLooks, len(s.effects)
	m.handle(workerExit{w: ws[0], status: exitStatus{known: true}})
	m.handle(workerExit{w: ws[1], status: exitStatus{known: true}})
	if s.groupLooks != looks || hasEffect(s, n, "reap") {
		t.Fatalf("looked at groups %d times, effects %q: want no look and no reap while the pool's last worker runs", s.groupLooks-looks, s.effects[n:])
	}
	if st := m.status(); st.Step == nil || !strings.Contains(st.Step.Text, "1 of 3 old workers still draining") {
		t.Errorf("status step %+v: an exited worker still counted as draining", st.Step)
	}
	checkInvariants(t, m, s)
	m.handle(workerExit{w: ws[2], status: exitStatus{known: true}})
	if s.groupLooks != looks+1 {
		t.Fatalf("looked at groups %d times for the pool's burst, want once", s.groupLooks-looks)
	}
	for _, w := range []*worker{ws[0], ws[2]} {
		if w.state != workerExited || !hasEffect(s, n, fmt.Sprintf("reap %d", w.pid)) {
			t.Errorf("worker %d: state %s, effects %q: want exited and reaped", w.pid, w.state, s.effects[n:])
		}
	}
	w := ws[1]
	if w.state != workerLingering || w.unchecked || w.linger == nil || hasEffect(s, n, fmt.Sprintf("reap %d", w.pid)) {
		t.Fatalf("lingering group: state %s, unchecked %v, linger timer %v: want lingering, watched, not reaped", w.state, w.unchecked, w.linger != nil)
	}
	if m.role != roleCommitting {
		t.Fatalf("role %s: the commit went on while a retired group lingers", m.role)
	}
	checkInvariants(t, m, s)
	delete(s.lingers, w.pid)
	s.fire(w.linger)
	if w.state != workerExited || m.role == roleCommitting {
		t.Fatalf("group gone: worker %s, role %s", w.state, m.role)
	}
	checkInvariants(t, m, s)
}

// TestUncheckedWorkerAtStopTimeout: a worker that exited in time, whose group was not
// looked at yet when its stop timeout runs out (a sibling ignores its stop signal), is
// not reported or killed as one that did not stop.
func TestUncheckedWorkerAtStopTimeout(t *testing.T) {
	m, s := reach(t, roleCommitting)
	ws := m.retiring[0].live()
	m.handle(workerExit{w: ws[0], status: exitStatus{known: true}})
	n := len(s.effects)
	s.fire(ws[0].timer)
	if ws[0].state != workerExited || ws[0].killed || hasEffect(s, n, fmt.Sprintf("signal %d KILL", ws[0].pid)) {
		t.Fatalf("state %s, killed %v, effects %q: want exited, no SIGKILL", ws[0].state, ws[0].killed, s.effects[n:])
	}
	s.fire(ws[1].timer)
	if !hasEffect(s, n, fmt.Sprintf("signal %d KILL", ws[1].pid)) {
		t.Fatalf("the worker that ignored its stop signal was not killed: %q", s.effects[n:])
	}
	checkInvariants(t, m, s)
}

// TestTrimMemoryAfterGeneration: when a retired generation is gone (here a reload's old
// pool), the master gives the cycle's garbage back to the kernel, once.
func TestTrimMemoryAfterGeneration(t *testing.T) {
	m, s := reach(t, roleServing)
	n := len(s.effects)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	readyAll(m)
	if hasEffect(s, n, "trim memory") {
		t.Fatalf("memory trimmed while the old pool drains: %q", s.effects[n:])
	}
	exitRetiring(m)
	trims := 0
	for _, e := range s.effects[n:] {
		if e == "trim memory" {
			trims++
		}
	}
	if trims != 1 {
		t.Fatalf("%d trims after the old pool was gone, want 1: %q", trims, s.effects[n:])
	}
}

// TestReadyCarriesTheStatusOnce: READY=1 carries the status line, and the same line is not
// sent again as a STATUS= of its own (each is a D-Bus signal of PID 1's).
func TestReadyCarriesTheStatusOnce(t *testing.T) {
	m, s := reach(t, roleServing)
	n := len(s.effects)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	readyAll(m)
	var ready string
	sent := map[string]int{}
	for _, e := range s.effects[n:] {
		if rest, ok := strings.CutPrefix(e, "notify READY=1 STATUS="); ok {
			ready = rest
			sent[rest]++
		} else if rest, ok := strings.CutPrefix(e, "notify STATUS="); ok {
			sent[rest]++
		}
	}
	if ready == "" {
		t.Fatalf("no READY=1 with a status after the reload: %q", s.effects[n:])
	}
	if sent[ready] != 1 {
		t.Errorf("status line %q sent %d times: %q", ready, sent[ready], s.effects[n:])
	}
}
