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
