//go:build linux

package supervisor

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
)

// stop_spread, on the fake system: the order of the stop signals, what each event does to
// a schedule under way, and what status and the waits say meanwhile.

// spreadMaster reaches role r with four workers and stop_spread 8s (a signal every 2s).
func spreadMaster(t *testing.T, r role) (*Master, *fakeSystem) {
	return reach(t, r, func(c *config.Config) {
		c.Worker.Count, c.Worker.StopSpread, c.Worker.StopTimeout = 4, 8*time.Second, 30*time.Second
	})
}

// signalled lists the pids of ws that were sent sig since effect n.
func signalled(s *fakeSystem, n int, ws []*worker, sig string) []int {
	var pids []int
	for _, w := range ws {
		if hasEffect(s, n, fmt.Sprintf("signal %d %s", w.pid, sig)) {
			pids = append(pids, w.pid)
		}
	}
	return pids
}

// fireAt runs t with the fake clock moved to its end, as the real one would be.
func fireAt(s *fakeSystem, t *timer) {
	s.clock = t.at.Add(t.d)
	s.fire(t)
}

func TestStopSpreadCommitSignalsOneAtATime(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	old := m.current.live()
	n := len(s.effects)
	s.fire(s.armedOf(tSoak)[0])
	if m.role != roleCommitting {
		t.Fatalf("role %s, want committing", m.role)
	}
	for i := range old {
		// Before each signal: exactly the workers before it were signalled, in slot
		// order, the rest still ready.
		if got := signalled(s, n, old, "TERM"); len(got) != i+1 {
			t.Fatalf("after %d spread timers: signalled %v, want the first %d of %v", i, got, i+1, pids(old))
		}
		if w := old[i]; w.state != workerStopping || w.timer == nil || w.timer.kind != tWorkerKill || w.timer.d != 30*time.Second {
			t.Fatalf("worker %d: %s, its own stop timeout not armed at its signal", w.slot, w.state)
		}
		for _, w := range old[i+1:] {
			if w.state != workerReady {
				t.Fatalf("worker %d is %s before its turn", w.slot, w.state)
			}
		}
		checkInvariants(t, m, s)
		ts := s.armedOf(tSpread)
		if i == len(old)-1 {
			if len(ts) != 0 {
				t.Fatalf("a spread timer is left after the last signal")
			}
			break
		}
		if len(ts) != 1 || ts[0].d != 2*time.Second {
			t.Fatalf("next signal: %d timers armed, want one in 2s (8s / 4 workers)", len(ts))
		}
		fireAt(s, ts[0])
	}
	exitRetiring(m)
	if m.role != roleHandingOver {
		t.Fatalf("role %s once every old worker is gone, want handing-over", m.role)
	}
}

func pids(ws []*worker) []int {
	var p []int
	for _, w := range ws {
		p = append(p, w.pid)
	}
	return p
}

// A timer that fires late (a loaded machine) does not push the schedule: the next signal
// is due where it was planned, from the retire's start.
func TestStopSpreadKeepsPaceWhenLate(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	s.fire(s.armedOf(tSoak)[0])
	tm := s.armedOf(tSpread)[0]
	s.clock = tm.at.Add(tm.d + 1500*time.Millisecond)
	s.fire(tm)
	if ts := s.armedOf(tSpread); len(ts) != 1 || ts[0].d != 500*time.Millisecond {
		t.Fatalf("after a late signal: the next in %v, want 500ms", ts)
	}
	checkInvariants(t, m, s)
}

// What status says during a paced commit: the held workers serve, with their signal's
// time, and the step counts them and ends at the last one's stop timeout.
func TestStopSpreadStatus(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	start := s.clock
	s.fire(s.armedOf(tSoak)[0])
	st := m.status()
	held := 0
	for _, w := range st.Workers {
		if w.Role != "retiring" {
			t.Errorf("worker %d: role %q, want retiring", w.Slot, w.Role)
		}
		switch {
		case w.Slot == 1 && (w.State != "stopping" || w.StopAt != nil):
			t.Errorf("worker 1: %s, stop at %v; want stopping, no stop_at", w.State, w.StopAt)
		case w.Slot > 1 && (w.State != "ready" || w.StopAt == nil || !w.StopAt.Equal(start.Add(time.Duration(w.Slot-1)*2*time.Second))):
			t.Errorf("worker %d: %s, stop at %v; want ready, at +%ds", w.Slot, w.State, w.StopAt, 2*(w.Slot-1))
		case w.StopAt != nil:
			held++
		}
	}
	if held != 3 {
		t.Errorf("%d workers held, want 3", held)
	}
	step := m.step(s.clock)
	if step == nil || !strings.Contains(step.Text, "4 of 4 old workers still draining, 3 of them serving until their stop signal") {
		t.Fatalf("step: %+v", step)
	}
	// The last worker is signalled at +6s and gets 30s: the step ends at +36s.
	if want := start.Add(36 * time.Second); step.Deadline == nil || !step.Deadline.Equal(want) {
		t.Errorf("step deadline %v, want %v", step.Deadline, want)
	}
	if got := m.statusLine(); !strings.Contains(got, "old workers draining") {
		t.Errorf("status line %q", got)
	}
}

// A rollback during a paced commit: the old workers not signalled yet serve on, as the
// master's workers; the slots of those signalled get new workers; no more signals go out.
func TestStopSpreadRollbackDuringCommit(t *testing.T) {
	for _, how := range []string{"ctl-rollback", "new-exit"} {
		t.Run(how, func(t *testing.T) {
			m, s := spreadMaster(t, roleSoaking)
			old := m.current.live()
			s.fire(s.armedOf(tSoak)[0])
			fireAt(s, s.armedOf(tSpread)[0]) // workers 1 and 2 signalled
			n := len(s.effects)
			for _, k := range eventKinds {
				if k.name == how {
					k.do(m, s)
				}
			}
			if m.current == nil {
				t.Fatalf("no current pool after the rollback")
			}
			for _, w := range old[2:] {
				if m.current.workers[w.slot-1] != w || w.state != workerReady || w.retired {
					t.Errorf("worker %d (pid %d): %s, retired %v; want serving on in the current pool", w.slot, w.pid, w.state, w.retired)
				}
			}
			for _, w := range old[:2] {
				if m.current.workers[w.slot-1] == w || w.pool == m.current || w.state != workerStopping {
					t.Errorf("worker %d was signalled but is back: %s", w.slot, w.state)
				}
			}
			if got := strings.Count(strings.Join(s.effects[n:], "\n"), "start worker"); got != 2 {
				t.Errorf("%d workers started, want 2 (the signalled slots): %q", got, s.effects[n:])
			}
			if len(s.armedOf(tSpread)) != 0 {
				t.Errorf("the schedule goes on after the rollback")
			}
			checkInvariants(t, m, s)
			// Everything settles: the new workers are ready, the signalled ones exit.
			readyAll(m)
			for _, w := range old[:2] {
				m.handle(workerExit{w: w, status: exitStatus{known: true}})
			}
			if len(m.retiring) != 0 || !m.current.allReady() {
				t.Errorf("after the drain: %d pools retiring, %d of 4 ready", len(m.retiring), m.current.readyCount())
			}
			if got := signalled(s, n, old[2:], "TERM"); len(got) != 0 {
				t.Errorf("workers put back to work were signalled: %v", got)
			}
			// They are the master's workers again: a crash is restarted.
			m.handle(workerExit{w: old[3], status: exitStatus{known: true, code: 1}})
			if m.current.restart[3] == nil {
				t.Errorf("a reinstated worker's crash is not restarted")
			}
			checkInvariants(t, m, s)
		})
	}
}

// A worker signalled by a schedule is reaped when it exits, not at its stop timeout: the
// look at exited groups in one pass waits for a burst that a spread does not make.
func TestStopSpreadReapsAtOnce(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	old := m.current.live()
	s.fire(s.armedOf(tSoak)[0])
	n := len(s.effects)
	m.handle(workerExit{w: old[0], status: exitStatus{known: true}})
	if !hasEffect(s, n, fmt.Sprintf("reap %d", old[0].pid)) || old[0].state != workerExited {
		t.Fatalf("worker 1 exited during the spread: %s, not reaped: %q", old[0].state, s.effects[n:])
	}
	checkInvariants(t, m, s)
}

// A fast stop ends a schedule: every held worker gets TERM at once.
func TestStopSpreadFastStop(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	old := m.current.live()
	s.fire(s.armedOf(tSoak)[0])
	n := len(s.effects)
	m.handle(sigEvent{syscall.SIGTERM})
	if got := signalled(s, n, old[1:], "TERM"); len(got) != 3 {
		t.Fatalf("held workers signalled at the fast stop: %v, want all of %v", got, pids(old[1:]))
	}
	if len(s.armedOf(tSpread)) != 0 {
		t.Errorf("the schedule goes on after a fast stop")
	}
	for _, w := range old {
		if w.timer == nil || w.timer.d != fastStopGrace {
			t.Errorf("worker %d: no fast-stop SIGKILL armed", w.slot)
		}
	}
	checkInvariants(t, m, s)
}

// A graceful stop during a schedule keeps it: held workers are signalled at their turn,
// not at once; systemd is told the stop may take the spread too.
func TestStopSpreadGracefulStopKeepsSchedule(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	old := m.current.live()
	s.fire(s.armedOf(tSoak)[0])
	n := len(s.effects)
	ctl("stop")(m, s)
	if m.role != roleStopping {
		t.Fatalf("role %s, want stopping", m.role)
	}
	if got := signalled(s, n, old[1:], "TERM"); len(got) != 0 {
		t.Fatalf("held workers signalled at once by a graceful stop: %v", got)
	}
	if !hasEffect(s, n, "EXTEND_TIMEOUT_USEC=43000000") {
		t.Errorf("systemd not given stop_spread + stop_timeout + 5s: %q", s.effects[n:])
	}
	checkInvariants(t, m, s)
	for len(s.armedOf(tSpread)) > 0 {
		fireAt(s, s.armedOf(tSpread)[0])
	}
	if got := signalled(s, n, old[1:], "TERM"); len(got) != 3 {
		t.Fatalf("held workers signalled by the end of the schedule: %v", got)
	}
	m.handle(newMasterExited{up: m.up})
	exitRetiring(m)
	if m.role != roleExited {
		t.Fatalf("role %s, want exited", m.role)
	}
}

// A new master not committed yet stops its workers at once on QUIT (a rollback): the old
// master waits for it, and its own workers serve meanwhile.
func TestStopSpreadNotForNewMaster(t *testing.T) {
	m, s := reach(t, roleAwaitingCommit, func(c *config.Config) {
		c.Worker.Count, c.Worker.StopSpread = 4, 8*time.Second
	})
	ws := m.current.live()
	n := len(s.effects)
	m.handle(sigEvent{syscall.SIGQUIT})
	if got := signalled(s, n, ws, "TERM"); len(got) != 4 || len(s.armedOf(tSpread)) != 0 {
		t.Fatalf("QUIT to a new master not committed: signalled %v of %v", got, pids(ws))
	}
	// Once committed, it paces like any master.
	m, s = reach(t, roleAwaitingCommit, func(c *config.Config) {
		c.Worker.Count, c.Worker.StopSpread = 4, 8*time.Second
	})
	m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "commit"}})
	ws = m.current.live()
	n = len(s.effects)
	m.handle(sigEvent{syscall.SIGQUIT})
	if got := signalled(s, n, ws, "TERM"); len(got) != 1 || len(s.armedOf(tSpread)) != 1 {
		t.Fatalf("QUIT to a committed master: signalled %v of %v", got, pids(ws))
	}
}

// WINCH spreads too; HUP during the upgrade (nginx's "start the old workers again") puts
// the held ones back to work rather than starting a whole new pool.
func TestStopSpreadWinchThenHUP(t *testing.T) {
	m, s := spreadMaster(t, roleSoaking)
	old := m.current.live()
	n := len(s.effects)
	m.handle(sigEvent{syscall.SIGWINCH})
	if got := signalled(s, n, old, "TERM"); len(got) != 1 {
		t.Fatalf("WINCH signalled %v, want worker 1 only", got)
	}
	m.handle(sigEvent{syscall.SIGHUP})
	if m.current == nil || m.current.workers[1] != old[1] || old[1].retired {
		t.Fatalf("HUP did not put the held workers back to work")
	}
	if got := strings.Count(strings.Join(s.effects[n:], "\n"), "start worker"); got != 1 {
		t.Errorf("%d workers started, want 1: %q", got, s.effects[n:])
	}
	checkInvariants(t, m, s)
}

// A reload's old pool retires paced; the reload is done (and answered) at once, and a fast
// stop meanwhile stops the held workers too.
func TestStopSpreadReload(t *testing.T) {
	m, s := spreadMaster(t, roleServing)
	old := m.current.live()
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	n := len(s.effects)
	readyAll(m)
	if !hasEffect(s, n, "notify READY=1") {
		t.Fatalf("the reload is not done once the new workers are ready: %q", s.effects[n:])
	}
	if got := signalled(s, n, old, "TERM"); len(got) != 1 || got[0] != old[0].pid {
		t.Fatalf("old workers signalled: %v, want worker 1 only", got)
	}
	// A crash of a held old worker is no failure: the schedule skips it.
	m.handle(workerExit{w: old[1], status: exitStatus{known: true, code: 1}})
	if hasEffect(s, n, "arm restart") {
		t.Errorf("a retiring worker's exit was restarted: %q", s.effects[n:])
	}
	fireAt(s, s.armedOf(tSpread)[0])
	if hasEffect(s, n, fmt.Sprintf("signal %d TERM", old[1].pid)) {
		t.Errorf("an exited worker was signalled at its turn")
	}
	checkInvariants(t, m, s)
	fireAt(s, s.armedOf(tSpread)[0])
	if got := signalled(s, n, old[2:], "TERM"); len(got) != 1 || got[0] != old[2].pid {
		t.Fatalf("after two spread timers: %v signalled", got)
	}
	m.handle(sigEvent{syscall.SIGTERM})
	if !hasEffect(s, n, fmt.Sprintf("signal %d TERM", old[3].pid)) || len(s.armedOf(tSpread)) != 0 {
		t.Fatalf("the fast stop did not end the schedule: %q", s.effects[n:])
	}
	checkInvariants(t, m, s)
}

// Every held worker exits on its own before its turn: the pool is gone, and so is its
// schedule.
func TestStopSpreadPoolGoneEndsSchedule(t *testing.T) {
	m, s := spreadMaster(t, roleServing)
	m.handle(sigEvent{syscall.SIGWINCH})
	exitRetiring(m)
	if len(m.retiring) != 0 || len(s.armedOf(tSpread)) != 0 {
		t.Fatalf("%d pools retiring, %d spread timers left", len(m.retiring), len(s.armedOf(tSpread)))
	}
	checkInvariants(t, m, s)
}

// stop_spread = 0 (the default), one worker, or no ready worker: all at once, as before.
func TestStopSpreadAllAtOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		count  int
		spread time.Duration
	}{{"no spread", 4, 0}, {"one worker", 1, 8 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			m, s := reach(t, roleServing, func(cfg *config.Config) { cfg.Worker.Count, cfg.Worker.StopSpread = c.count, c.spread })
			old := m.current.live()
			n := len(s.effects)
			m.handle(sigEvent{syscall.SIGWINCH})
			if got := signalled(s, n, old, "TERM"); len(got) != len(old) || len(s.armedOf(tSpread)) != 0 {
				t.Fatalf("signalled %v of %v, %d spread timers", got, pids(old), len(s.armedOf(tSpread)))
			}
		})
	}
}
