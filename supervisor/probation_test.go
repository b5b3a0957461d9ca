//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/sdnotify"
)

// The probation of a reload's new workers, as a table: each case reaches a reload whose
// new workers are all ready, with the config given, then delivers its events; the reload
// then is committed (the old workers retire), failed (with the reason given; the old
// workers serve on), or still on trial.

type reloadOutcome int

const (
	onTrial reloadOutcome = iota
	committed
	failed
)

func (o reloadOutcome) String() string { return [...]string{"on trial", "committed", "failed"}[o] }

// startReloadOnTrial brings a serving master's reload to the point where its new workers
// are all ready; edit is the config of the reload.
func startReloadOnTrial(t *testing.T, edit func(*config.Config)) (*Master, *fakeSystem, *pool) {
	m, s, old, _ := startReloadWaited(t, edit)
	return m, s, old
}

// startReloadWaited is startReloadOnTrial with a control client waiting for the reload:
// what it was answered.
func startReloadWaited(t *testing.T, edit func(*config.Config)) (*Master, *fakeSystem, *pool, *[]string) {
	t.Helper()
	var got []string
	m, s := reach(t, roleServing)
	old := m.current
	cfg := *m.cfg
	edit(&cfg)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: &cfg, stamp: "1"})
	s.loads = nil
	m.reloadWaiters = append(m.reloadWaiters, func(r ControlReply) { got = append(got, r.Error) })
	readyAll(m)
	return m, s, old, &got
}

// trialEvents are what can happen to a reload on trial.
var trialEvents = map[string]func(m *Master, s *fakeSystem){
	"soak":       func(m *Master, s *fakeSystem) { fireAll(s, tReloadSoak) },
	"pass":       func(m *Master, s *fakeSystem) { s.answerChecks(m, nil) },
	"fail":       func(m *Master, s *fakeSystem) { s.answerChecks(m, errors.New("exit status 1")) },
	"timeout":    func(m *Master, s *fakeSystem) { s.answerChecks(m, errors.New("timed out after 5s")) },
	"next-check": func(m *Master, s *fakeSystem) { fireAll(s, tCheck) },
	"crash": func(m *Master, s *fakeSystem) {
		m.handle(workerExit{w: m.reload.pool.live()[0], status: exitStatus{known: true, signal: syscall.SIGSEGV}})
	},
	"errno": func(m *Master, s *fakeSystem) {
		w := m.reload.pool.live()[1]
		m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "STATUS", Value: "db down"}, {Key: "ERRNO", Value: "111"}}}})
	},
	"old-errno": func(m *Master, s *fakeSystem) {
		w := m.current.live()[0]
		m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "ERRNO", Value: "5"}}}})
	},
	"bad-errno": func(m *Master, s *fakeSystem) {
		w := m.reload.pool.live()[0]
		m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "ERRNO", Value: "-1\x00x"}}}})
	},
	"HUP":   func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGHUP}) },
	"WINCH": func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGWINCH}) },
	"USR2":  func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGUSR2}) },
	"TERM":  func(m *Master, s *fakeSystem) { m.handle(sigEvent{syscall.SIGTERM}) },
}

func fireAll(s *fakeSystem, kind timerKind) {
	for _, t := range s.armedOf(kind) {
		s.fire(t)
	}
}

func soak(d time.Duration) func(*config.Config) {
	return func(c *config.Config) { c.Reload.Soak = d }
}

func check(failures int) func(*config.Config) {
	return func(c *config.Config) {
		c.Health.Check = []string{"/bin/smoke"}
		c.Health.CheckFailures = failures
	}
}

func both(edits ...func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		for _, e := range edits {
			e(c)
		}
	}
}

func TestReloadProbation(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*config.Config)
		events string // space-separated trialEvents
		want   reloadOutcome
		reason string // part of the failure's reason
	}{
		{"no soak, no check: at once", soak(0), "", committed, ""},
		{"soak: old workers serve on", soak(5 * time.Second), "", onTrial, ""},
		{"soak runs out", soak(5 * time.Second), "soak", committed, ""},
		{"crash during soak", soak(5 * time.Second), "crash", failed, "new worker 1 (pid 1003) killed by SIGSEGV during probation"},
		{"ERRNO during soak", soak(5 * time.Second), "errno", failed, "worker 2 (pid 1004) reported ERRNO=111: db down during probation"},
		{"ERRNO of an old worker", soak(5 * time.Second), "old-errno soak", committed, ""},
		{"ERRNO that is no number", soak(5 * time.Second), "bad-errno soak", committed, ""},
		{"check passes, no soak", check(3), "pass", committed, ""},
		{"check not run yet", check(3), "", onTrial, ""},
		{"check passes before the soak ends", both(check(3), soak(5*time.Second)), "pass", onTrial, ""},
		{"check passed, then the soak ends", both(check(3), soak(5*time.Second)), "pass soak", committed, ""},
		{"soak ends, check failing: waits for a pass", both(check(3), soak(5*time.Second)), "fail soak", onTrial, ""},
		{"soak ended, the next check passes", both(check(3), soak(5*time.Second)), "fail soak next-check pass", committed, ""},
		{"check fails 3 in a row", check(3), "fail next-check fail next-check timeout", failed, "health check failed 3 time(s) in a row: timed out after 5s: out"},
		{"a pass forgives", check(3), "fail next-check fail next-check pass", committed, ""},
		{"a pass forgives, soak on", both(check(2), soak(5*time.Second)), "fail next-check pass next-check fail", onTrial, ""},
		{"check_failures = 1", check(1), "fail", failed, "health check failed 1 time(s) in a row: exit status 1: out"},
		{"crash while the check runs", check(3), "crash", failed, "during probation"},
		{"HUP during probation: ignored", soak(5 * time.Second), "HUP soak", committed, ""},
		{"USR2 during probation: refused", soak(5 * time.Second), "USR2 soak", committed, ""},
		{"WINCH during probation", both(check(3), soak(5*time.Second)), "WINCH", failed, "WINCH received"},
		{"TERM during probation", both(check(3), soak(5*time.Second)), "TERM", failed, "stopping"},
		{"stale check result after failure", check(3), "crash pass", failed, "during probation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s, old, answers := startReloadWaited(t, tt.cfg)
			for _, e := range strings.Fields(tt.events) {
				trialEvents[e](m, s)
				checkInvariants(t, m, s)
			}
			got := *answers
			outcome := onTrial
			switch {
			case m.reload != nil:
			case m.current != old && m.current != nil:
				outcome = committed
			default:
				outcome = failed
			}
			if outcome != tt.want {
				t.Fatalf("after %q: %s, want %s\neffects %q", tt.events, outcome, tt.want, s.effects)
			}
			switch outcome {
			case onTrial:
				if old.retiring || m.current != old {
					t.Errorf("on trial, the old workers retire")
				}
				if len(got) != 0 {
					t.Errorf("reload answered while on trial: %q", got)
				}
			case committed:
				if !old.retiring {
					t.Errorf("committed, and the old workers do not retire")
				}
				if len(got) != 1 || got[0] != "" {
					t.Errorf("reload answers %q, want success", got)
				}
			case failed:
				if old.retiring && m.role != roleStopping && tt.events != "WINCH" {
					t.Errorf("failed, and the old workers retire")
				}
				if len(got) != 1 || !strings.Contains(got[0], tt.reason) {
					t.Errorf("reload answers %q, want an error with %q", got, tt.reason)
				}
				if !strings.Contains(m.lastErr, tt.reason) {
					t.Errorf("last error %q, want %q in it", m.lastErr, tt.reason)
				}
			}
			if outcome != onTrial && len(s.checks) > 0 {
				t.Errorf("check still running after the trial: %+v", s.checks)
			}
		})
	}
}

// The check's environment names the generation on trial, its master and its workers, and
// drops what describes the master's own relation to systemd.
func TestCheckEnvironment(t *testing.T) {
	m, s, _ := startReloadOnTrial(t, check(3))
	if len(s.checks) != 1 {
		t.Fatalf("checks running: %d, want 1", len(s.checks))
	}
	c := s.checks[0]
	env := strings.Join(c.env, "\n")
	ws := m.reload.pool.live()
	want := fmt.Sprintf("BATON_GENERATION=1\nBATON_MASTER_PID=100\nBATON_WORKER_PIDS=%d %d", ws[0].pid, ws[1].pid)
	if !strings.HasSuffix(env, want) {
		t.Errorf("check env:\n%s\nwant it to end with\n%s", env, want)
	}
	if strings.Contains(env, "WATCHDOG_USEC") {
		t.Errorf("the master's WATCHDOG_USEC reaches the check:\n%s", env)
	}
	if c.pool != m.reload.pool || c.timeout != 5*time.Second {
		t.Errorf("check run %+v", c)
	}
}

// A new master on trial: it says ready once its check passed; until its old master
// commits, a worker that exits fails the upgrade; after that, it is restarted.
func TestNewMasterProbation(t *testing.T) {
	t.Run("ready only after the check passed", func(t *testing.T) {
		m, s := reach(t, roleJoining, check(3))
		readyAll(m)
		if m.role != roleJoining || sentType(s, "ready") {
			t.Fatalf("ready before the check passed: role %s, sent %+v", m.role, s.sent)
		}
		s.answerChecks(m, errors.New("exit status 1"))
		fireAll(s, tCheck)
		s.answerChecks(m, nil)
		if m.role != roleAwaitingCommit || !sentType(s, "ready") {
			t.Fatalf("check passed: role %s, sent %+v", m.role, s.sent)
		}
	})
	t.Run("check fails: the new master gives up with the reason", func(t *testing.T) {
		m, s := reach(t, roleJoining, check(2))
		readyAll(m)
		s.answerChecks(m, errors.New("exit status 2"))
		fireAll(s, tCheck)
		s.answerChecks(m, errors.New("exit status 2"))
		if m.role != roleStopping || !sentReason(s, "error", "health check failed 2 time(s) in a row: exit status 2: out") {
			t.Fatalf("role %s, sent %+v", m.role, s.sent)
		}
	})
	t.Run("worker exits before the commit", func(t *testing.T) {
		m, s := reach(t, roleAwaitingCommit)
		m.handle(workerExit{w: m.current.live()[1], status: exitStatus{known: true, code: 3}})
		if m.role != roleStopping || !sentReason(s, "error", "worker 2 (pid 1002) exit status 3 during probation") {
			t.Fatalf("role %s, sent %+v", m.role, s.sent)
		}
	})
	t.Run("worker exits once the old master commits: restarted", func(t *testing.T) {
		m, s := reach(t, roleAwaitingCommit, check(3))
		m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "committing"}})
		if len(s.checks) != 0 || len(s.armedOf(tCheck)) != 0 {
			t.Fatalf("the check goes on after the commit began")
		}
		m.handle(workerExit{w: m.current.live()[1], status: exitStatus{known: true, code: 3}})
		if m.role != roleAwaitingCommit || sentType(s, "error") || len(s.armedOf(tRestart)) != 1 {
			t.Fatalf("role %s, sent %+v, restarts %d", m.role, s.sent, len(s.armedOf(tRestart)))
		}
	})
	t.Run("old master gone while the check runs: in charge, serving", func(t *testing.T) {
		m, s := reach(t, roleJoining, check(3))
		m.sd = nil // off systemd: no wait for MainPID
		readyAll(m)
		m.handle(oldMasterGone{m.parent})
		if m.role != roleServing || m.probation != nil || len(s.checks) != 0 {
			t.Fatalf("role %s, probation %v, checks %d", m.role, m.probation != nil, len(s.checks))
		}
	})
	t.Run("the old master says committing when it commits", func(t *testing.T) {
		m, s := reach(t, roleSoaking)
		fireAll(s, tSoak)
		if m.role != roleCommitting || !sentType(s, "committing") {
			t.Fatalf("role %s, sent %+v", m.role, s.sent)
		}
	})
}

func sentType(s *fakeSystem, typ string) bool { return sentReason(s, typ, "") }

func sentReason(s *fakeSystem, typ, reason string) bool {
	for _, msg := range s.sent {
		if msg.Type == typ && strings.Contains(msg.Reason, reason) {
			return true
		}
	}
	return false
}

// A rolling reload, driven to its end: at every step at most count + max(surge, canary)
// workers run (draining ones included), never fewer than count are ready (the old and the
// new together), and the old slots retire in order, batch by batch.
func TestRollingReload(t *testing.T) {
	tests := []struct {
		name                 string
		count, surge, canary int
		soak                 time.Duration
		check                bool
	}{
		{"surge 1", 4, 1, 0, 0, false},
		{"surge 2", 4, 2, 0, 0, false},
		{"surge past count", 3, 5, 0, 0, false},
		{"canary 1 with soak, surge 2", 4, 2, 1, 5 * time.Second, false},
		{"canary 2 with check", 5, 1, 2, 0, true},
		{"canary without soak or check", 4, 1, 1, 0, false},
		{"no canary, soak at the end", 4, 2, 0, 5 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := reach(t, roleServing, func(c *config.Config) { c.Worker.Count = tt.count })
			old := m.current
			cfg := *m.cfg
			cfg.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: tt.surge, Canary: tt.canary}
			cfg.Reload.Soak = tt.soak
			if tt.check {
				cfg.Health.Check = []string{"/bin/smoke"}
			}
			var answers []string
			m.reloadWaiters = append(m.reloadWaiters, func(r ControlReply) { answers = append(answers, r.Error) })
			m.handle(sigEvent{syscall.SIGHUP})
			m.handle(configLoaded{seq: s.loads[0], cfg: &cfg, stamp: "1"})
			s.loads = nil
			most := tt.count + max(tt.surge, tt.canary)
			for step := 0; m.reload != nil; step++ {
				if step > 100 {
					t.Fatalf("the reload does not end: %q", s.effects)
				}
				running, ready := 0, 0
				for _, p := range m.allPools() {
					running += len(p.all())
					if !p.retiring {
						ready += p.readyCount()
					}
				}
				if running > most {
					t.Fatalf("step %d: %d workers run, at most %d wanted", step, running, most)
				}
				if ready < tt.count && step > 0 {
					t.Fatalf("step %d: %d ready, want at least %d", step, ready, tt.count)
				}
				checkInvariants(t, m, s)
				// One thing happens at a time: new workers ready, old ones gone, the trial.
				switch {
				case len(s.checks) > 0:
					s.answerChecks(m, nil)
				case len(s.armedOf(tReloadSoak)) > 0:
					fireAll(s, tReloadSoak)
				case len(m.retiring) > 0:
					exitRetiring(m)
				default:
					readyOne(m)
				}
			}
			if len(answers) != 1 || answers[0] != "" {
				t.Fatalf("reload answered %q, want success", answers)
			}
			if m.current == old || len(m.current.live()) != tt.count || !old.retiring && len(old.live()) > 0 {
				t.Errorf("after the reload: current %d (old %d), %d live", m.current.id, old.id, len(m.current.live()))
			}
			if tt.canary > 0 && (tt.soak > 0 || tt.check) && !hasEffect(s, 0, "check 1") && tt.check {
				t.Errorf("the canary had no check")
			}
		})
	}
}

// A rolling reload that fails mid-way brings the old workers it replaced back first, and
// retires the new ones only once the old pool is ready again: never fewer than count ready.
func TestRollingReloadFails(t *testing.T) {
	m, s := reach(t, roleServing, func(c *config.Config) { c.Worker.Count = 4 })
	old := m.current
	cfg := *m.cfg
	cfg.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: 1}
	var answers []string
	m.reloadWaiters = append(m.reloadWaiters, func(r ControlReply) { answers = append(answers, r.Error) })
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: &cfg, stamp: "1"})
	s.loads = nil
	readyAll(m)     // new slot 1 ready: old slot 1 retires
	exitRetiring(m) // gone: new slot 2 starts
	readyAll(m)     // ready: old slot 2 retires
	exitRetiring(m) // new slot 3 starts
	if got := len(old.live()); got != 2 {
		t.Fatalf("old workers left: %d, want 2", got)
	}
	newPool := m.reload.pool
	m.handle(workerExit{w: newPool.workers[0], status: exitStatus{known: true, code: 1}}) // new slot 1 fails
	if m.reload == nil || !m.reload.roll.back || len(old.live()) != 4 {
		t.Fatalf("after the failure: reload %v, old live %d, want rolling back with 4 old", m.reload != nil, len(old.live()))
	}
	if newPool.retiring || len(answers) != 0 {
		t.Fatalf("the new workers retire before the old ones are back (answers %q)", answers)
	}
	checkInvariants(t, m, s)
	readyAll(m) // the old slots 1 and 2 are ready again (and new slot 3)
	if m.reload != nil || !newPool.retiring || m.current != old {
		t.Fatalf("old pool ready again: reload %v, new pool retiring %v", m.reload != nil, newPool.retiring)
	}
	if len(answers) != 1 || !strings.Contains(answers[0], "new worker 1") {
		t.Fatalf("reload answered %q, want the failure of new worker 1", answers)
	}
	checkInvariants(t, m, s)

	// The same, but the old workers never get ready again: the bound ends the wait.
	m2, s2 := reach(t, roleServing, func(c *config.Config) { c.Worker.Count = 2 })
	cfg2 := *m2.cfg
	cfg2.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: 1}
	m2.handle(sigEvent{syscall.SIGHUP})
	m2.handle(configLoaded{seq: s2.loads[0], cfg: &cfg2, stamp: "1"})
	readyAll(m2)
	exitRetiring(m2)
	m2.handle(workerExit{w: m2.reload.pool.workers[0], status: exitStatus{known: true, code: 1}})
	if m2.reload == nil || len(s2.armedOf(tRollBack)) != 1 {
		t.Fatalf("no roll-back bound armed")
	}
	fireAll(s2, tRollBack)
	if m2.reload != nil {
		t.Fatalf("the bound did not end the reload")
	}
	checkInvariants(t, m2, s2)
}

// readyOne makes the first starting worker of the reload's pool say READY=1.
func readyOne(m *Master) {
	for _, w := range m.reload.pool.live() {
		if w.state == workerStarting {
			m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "READY", Value: "1"}}}})
			return
		}
	}
}

// pair is an old master and the new master of its upgrade, on fake systems, with the
// hand-over link between them carried by the test (deliver).
type pair struct {
	t          *testing.T
	o, n       *Master
	so, sn     *fakeSystem
	toN, toO   int // messages of each side already delivered
	count      int
	most       int
	checkSteps bool
}

// newPair starts an old master with count workers under cfg (edit) and upgrades it: the new
// master runs the same config.
func newPair(t *testing.T, count int, edit func(*config.Config)) *pair {
	o, so := reach(t, roleServing, func(c *config.Config) { c.Worker.Count = count; edit(c) })
	o.handle(sigEvent{syscall.SIGUSR2})
	if o.up == nil {
		t.Fatalf("no upgrade started")
	}
	n, sn := testMaster(t, true, true, func(c *config.Config) { c.Worker.Count = count; edit(c) })
	n.parent.roll, n.parent.oldWorkers = so.hello.Roll, so.hello.Workers
	n.pid = o.up.pid
	sn.nextPID = 5000
	n.start()
	return &pair{t: t, o: o, n: n, so: so, sn: sn, count: count}
}

// deliver carries the messages each side sent since the last call.
func (p *pair) deliver() {
	for {
		moved := false
		if l := p.n.parentLink(); l != nil && p.toO < len(l.sent) && p.o.up != nil {
			msg := l.sent[p.toO]
			p.toO++
			p.o.handle(newMasterMsg{p.o.up, msg})
			moved = true
		}
		if p.o.up != nil && p.n.parent != nil {
			if l := p.o.up.link.(*fakeLink); p.toN < len(l.sent) {
				msg := l.sent[p.toN]
				p.toN++
				p.n.handle(oldMasterMsg{p.n.parent, msg})
				moved = true
			}
		}
		if !moved {
			return
		}
	}
}

func (m *Master) parentLink() *fakeLink {
	if m.parent == nil {
		return nil
	}
	return m.parent.link.(*fakeLink)
}

// capacity checks that, together, the two masters run at most count + surge workers and
// have at least count ready.
func (p *pair) capacity(step int, surge int) {
	p.t.Helper()
	running, ready := 0, 0
	for _, m := range []*Master{p.o, p.n} {
		for _, pl := range m.allPools() {
			running += len(pl.all())
			if !pl.retiring {
				ready += pl.readyCount()
			}
		}
	}
	if running > p.count+surge {
		p.t.Fatalf("step %d: %d workers run, at most %d wanted", step, running, p.count+surge)
	}
	if ready < p.count {
		p.t.Fatalf("step %d: %d ready, want at least %d", step, ready, p.count)
	}
	checkInvariants(p.t, p.o, p.so)
	checkInvariants(p.t, p.n, p.sn)
}

// readyFirst makes m's first starting worker say READY=1; it reports whether there was one.
func readyFirst(m *Master) bool {
	for _, pl := range m.allPools() {
		for _, w := range pl.live() {
			if w.state == workerStarting {
				m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "READY", Value: "1"}}}})
				return true
			}
		}
	}
	return false
}

// A rolling upgrade: the new master starts surge workers at a time, the old master retires
// its own of the same slots between batches; never fewer than count ready, never more
// than count + surge running; then the commit as usual.
func TestRollingUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		count, surge, canary int
		check                bool
	}{
		{"surge 1", 3, 1, 0, false},
		{"surge 2", 5, 2, 0, false},
		{"canary 1 with a check", 4, 1, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, tt.count, func(c *config.Config) {
				c.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: tt.surge, Canary: tt.canary}
				if tt.check {
					c.Health.Check = []string{"/bin/smoke"}
				}
			})
			most := max(tt.surge, tt.canary)
			for step := 0; p.o.role != roleSoaking; step++ {
				if step > 200 {
					t.Fatalf("the new master never says ready: old %s, new %s\nold %q\nnew %q", p.o.role, p.n.role, p.so.effects, p.sn.effects)
				}
				p.capacity(step, most)
				switch {
				case len(p.sn.checks) > 0:
					p.sn.answerChecks(p.n, nil)
				case len(p.sn.armedOf(tReloadSoak)) > 0:
					fireAll(p.sn, tReloadSoak)
				case len(p.o.retiring) > 0:
					exitRetiring(p.o)
				case readyFirst(p.n):
				}
				p.deliver()
			}
			// Every batch but the last retired the old workers of its slots; the commit
			// retires the rest.
			if got, want := len(p.o.up.vacated), tt.count-len(p.n.uproll.batch); got != want {
				t.Errorf("old slots retired before the commit: %d, want %d", got, want)
			}
			fireAll(p.so, tSoak) // commit: the old master's last workers drain
			p.capacity(-1, most)
			exitRetiring(p.o)
			for _, up := range p.so.hands {
				p.o.handle(handOverDone{up: up})
			}
			p.deliver()
			if p.o.role != roleExited || p.n.role != roleServing {
				t.Fatalf("after the commit: old %s, new %s", p.o.role, p.n.role)
			}
		})
	}
}

// A rolling upgrade whose new master fails after the old one retired workers for it: the
// new master serves on, the old one starts its retired slots again, and asks the new one to
// stop only once they are ready; never fewer than count ready.
func TestRollingUpgradeFails(t *testing.T) {
	p := newPair(t, 3, func(c *config.Config) {
		c.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: 1}
	})
	readyFirst(p.n) // N's slot 1 ready: batch
	p.deliver()     // O retires its slot 1
	exitRetiring(p.o)
	p.deliver() // go: N starts slot 2
	p.capacity(1, 1)
	w := p.n.current.workers[1]
	p.n.handle(workerExit{w: w, status: exitStatus{known: true, code: 2}})
	if p.n.role != roleJoining || !p.n.uproll.failed {
		t.Fatalf("the new master stops before the old workers are back: %s", p.n.role)
	}
	p.deliver() // error: O rolls back, its slot 1 starts again
	if p.o.role != roleRollingBack || p.o.current.workers[0] == nil {
		t.Fatalf("old master %s, slot 1 %v", p.o.role, p.o.current.workers[0])
	}
	if hasEffect(p.so, 0, "signal N QUIT") {
		t.Fatalf("the new master is asked to stop before the old slot is ready: %q", p.so.effects)
	}
	p.capacity(2, 1)
	readyFirst(p.o) // old slot 1 ready: QUIT to N
	if !hasEffect(p.so, 0, "signal N QUIT") {
		t.Fatalf("no QUIT to the new master once the old slots are back: %q", p.so.effects)
	}
	p.capacity(3, 1)
	p.n.handle(sigEvent{syscall.SIGQUIT})
	exitRetiring(p.n)
	if p.n.role != roleExited {
		t.Fatalf("the new master does not exit on QUIT: %s", p.n.role)
	}
	p.o.handle(newMasterMsg{p.o.up, handoffMsg{Type: "exit", Code: 1, Reason: p.n.exitMsg}})
	p.o.handle(newMasterExited{up: p.o.up, how: "exit status 1"})
	if p.o.role != roleServing || !strings.Contains(p.o.lastErr, "worker 2") {
		t.Fatalf("after the rollback: %s, last error %q", p.o.role, p.o.lastErr)
	}
	checkInvariants(t, p.o, p.so)
}

// An old master whose workers were stopped (WINCH) during a rolling upgrade tells the new
// master to go on at once: it has nothing to retire.
func TestRollingUpgradeAfterWINCH(t *testing.T) {
	p := newPair(t, 2, func(c *config.Config) {
		c.Rollout = config.Rollout{Strategy: config.StrategyRolling, Surge: 1}
	})
	p.o.handle(sigEvent{syscall.SIGWINCH})
	exitRetiring(p.o)
	readyFirst(p.n)
	p.deliver()
	if len(p.n.current.live()) != 2 {
		t.Fatalf("the new master did not go on after the old one's WINCH: %q", p.sn.effects)
	}
}

// A new master reports its progress as soon as its workers are started, even if none of
// them ever says anything: the old master's timeout then says what it waited for.
func TestNewMasterReportsProgressAtStart(t *testing.T) {
	_, s := reach(t, roleJoining)
	if !sentType(s, "progress") {
		t.Fatalf("no progress sent at start: %+v", s.sent)
	}
}
