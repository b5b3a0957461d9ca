//go:build linux

package supervisor

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/metrics"
)

// countersDown says which counter of after is below its value in before ("" if none).
func countersDown(before, after metrics.Counts) string {
	for _, c := range []struct {
		name string
		b, a uint64
	}{
		{"worker_starts", before.WorkerStarts, after.WorkerStarts},
		{"worker_exits", before.WorkerExits, after.WorkerExits},
		{"worker_restarts", before.WorkerRestarts, after.WorkerRestarts},
	} {
		if c.a < c.b {
			return fmt.Sprintf("%s went down: %d -> %d", c.name, c.b, c.a)
		}
	}
	for _, c := range []struct {
		name string
		b, a map[string]uint64
	}{{"reloads", before.Reloads, after.Reloads}, {"upgrades", before.Upgrades, after.Upgrades}, {"rollbacks", before.Rollbacks, after.Rollbacks}} {
		for k, v := range c.b {
			if c.a[k] < v {
				return fmt.Sprintf("%s{%s} went down: %d -> %d", c.name, k, v, c.a[k])
			}
		}
	}
	for k, h := range before.Phases {
		if after.Phases[k] == nil || after.Phases[k].Count() < h.Count() {
			return fmt.Sprintf("histogram %s lost observations", k)
		}
	}
	return ""
}

// commitSent returns the counts the old master m sent its new master in "commit".
func commitSent(t *testing.T, up *upgrade) *metrics.Counts {
	t.Helper()
	for _, msg := range up.link.(*fakeLink).sent {
		if msg.Type == "commit" {
			if msg.Metrics == nil {
				t.Fatal("commit without the old master's counts")
			}
			return msg.Metrics
		}
	}
	t.Fatal("no commit sent")
	return nil
}

// An upgrade that commits: the new master serves the old master's totals plus its own, so
// that no counter a scraper saw from the old master is lower when the new one answers.
func TestMetricsCarryOverAtCommit(t *testing.T) {
	o, os := reach(t, roleServing)
	// A crash and its restart, and a reload, on the old master.
	w := o.current.live()[0]
	o.handle(workerExit{w: w, status: exitStatus{known: true, code: 1}})
	os.fire(os.armedOf(tRestart)[0])
	readyAll(o)
	o.handle(sigEvent{syscall.SIGHUP})
	os.clock = os.clock.Add(1500 * time.Millisecond)
	o.handle(configLoaded{seq: os.loads[0], cfg: o.cfg})
	os.clock = os.clock.Add(500 * time.Millisecond)
	readyAll(o)
	exitRetiring(o)
	c := o.metrics.counts
	if c.WorkerStarts != 5 || c.WorkerExits != 3 || c.WorkerRestarts != 1 || c.Reloads[metrics.ResultOK] != 1 {
		t.Fatalf("old master's counts after a crash and a reload: %+v", c)
	}
	if h := c.Phases[metrics.PhaseReload]; h == nil || h.Count() != 1 || h.Sum != 2 {
		t.Fatalf("reload duration: %+v, want one of 2s", h)
	}

	// The upgrade: ready after 3s, committed 5s (the soak) later.
	o.handle(sigEvent{syscall.SIGUSR2})
	up := o.up
	os.clock = os.clock.Add(3 * time.Second)
	o.handle(newMasterMsg{up, handoffMsg{Type: "ready"}})
	os.clock = os.clock.Add(5 * time.Second)
	os.fire(os.armedOf(tSoak)[0])
	exitRetiring(o)
	seenFromOld := o.metrics.counts.Clone() // the last scrape the old master could answer
	o.handle(handOverDone{up: up})
	if o.role != roleExited {
		t.Fatalf("old master: %s, want exited", o.role)
	}
	sent := commitSent(t, up)
	if sent.Upgrades[metrics.ResultCommitted] != 1 || sent.LastSuccess[metrics.ActionUpgrade] != float64(os.clock.Unix()) {
		t.Errorf("the commit's counts do not count the upgrade: %+v", sent)
	}
	if h := sent.Phases[metrics.PhaseUpgradeReady]; h == nil || h.Sum != 3 {
		t.Errorf("upgrade ready phase: %+v, want 3s", h)
	}
	if h := sent.Phases[metrics.PhaseUpgradeCommit]; h == nil || h.Sum != 5 {
		t.Errorf("upgrade commit phase: %+v, want 5s", h)
	}

	// The new master: its own two workers, then the commit.
	n, _ := reach(t, roleAwaitingCommit)
	own := n.metrics.counts.WorkerStarts
	n.handle(oldMasterMsg{n.parent, handoffMsg{Type: "commit", Metrics: sent}})
	if n.role != roleServing {
		t.Fatalf("new master: %s, want serving", n.role)
	}
	got := n.metrics.counts
	if got.WorkerStarts != sent.WorkerStarts+own || got.Upgrades[metrics.ResultCommitted] != 1 || got.Reloads[metrics.ResultOK] != 1 {
		t.Errorf("new master's counts %+v, want the old master's %+v plus its own %d starts", got, sent, own)
	}
	if err := countersDown(seenFromOld, got); err != "" {
		t.Errorf("from the old master's last scrape to the new master's first: %s", err)
	}
}

// An upgrade rolled back: the new master's counts go with it; the old master counts the
// rollback, by why, and its next commit carries only its own counts.
func TestMetricsRollback(t *testing.T) {
	tests := []struct {
		name string
		how  func(m *Master, s *fakeSystem)
		why  string
	}{
		{"new master exits", func(m *Master, s *fakeSystem) {}, rollbackNewMasterExited},
		{"baton rollback", func(m *Master, s *fakeSystem) {
			m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
			m.handle(controlEvent{req: ControlRequest{Verb: "rollback"}, reply: func(ControlReply) {}})
		}, rollbackRequested},
		{"timeout", func(m *Master, s *fakeSystem) { s.fire(s.armedOf(tUpgradeReady)[0]) }, rollbackTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := reach(t, roleUpgrading)
			before := m.metrics.counts.Clone()
			tt.how(m, s)
			m.handle(newMasterExited{up: m.up, how: "exit status 1"})
			if m.role != roleServing {
				t.Fatalf("role %s, want serving", m.role)
			}
			c := m.metrics.counts
			if c.Upgrades[metrics.ResultRolledBack] != 1 || c.Rollbacks[tt.why] != 1 || len(c.Rollbacks) != 1 {
				t.Errorf("upgrades %v rollbacks %v, want one rolled back, why %s", c.Upgrades, c.Rollbacks, tt.why)
			}
			if c.Upgrades[metrics.ResultCommitted] != 0 || c.LastSuccess[metrics.ActionUpgrade] != 0 {
				t.Errorf("a rollback counted as a success: %+v", c)
			}
			if err := countersDown(before, c); err != "" {
				t.Error(err)
			}
			// The next upgrade commits: it hands over this master's counts, nothing of the
			// new master that went away.
			m.handle(sigEvent{syscall.SIGUSR2})
			up := m.up
			m.handle(newMasterMsg{up, handoffMsg{Type: "ready"}})
			s.fire(s.armedOf(tSoak)[0])
			exitRetiring(m)
			m.handle(handOverDone{up: up})
			sent := commitSent(t, up)
			if sent.WorkerStarts != c.WorkerStarts || sent.Upgrades[metrics.ResultRolledBack] != 1 || sent.Upgrades[metrics.ResultCommitted] != 1 {
				t.Errorf("commit after a rollback sent %+v, this master had counted %+v", sent, c)
			}
		})
	}
}

func TestMetricsReloadResults(t *testing.T) {
	m, s := reach(t, roleServing)
	s.badCfg = true
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], err: fmt.Errorf("web.toml:3: bad")})
	m.handle(sigEvent{syscall.SIGUSR2})
	m.handle(sigEvent{syscall.SIGHUP}) // refused: an upgrade is in flight
	c := m.metrics.counts
	if c.Reloads[metrics.ResultFailed] != 1 || c.Reloads[metrics.ResultRefused] != 1 || c.Reloads[metrics.ResultOK] != 0 {
		t.Errorf("reloads %v, want one failed, one refused", c.Reloads)
	}
	if c.Phases[metrics.PhaseReload] != nil || c.LastSuccess[metrics.ActionReload] != 0 {
		t.Errorf("a failed reload was timed or counted as a success: %+v", c)
	}
}

func TestMetricsUpgradeThatCannotStart(t *testing.T) {
	m, s := reach(t, roleServing)
	s.failNew = true
	m.handle(sigEvent{syscall.SIGUSR2})
	if got := m.metrics.counts.Upgrades[metrics.ResultFailed]; got != 1 {
		t.Errorf("upgrades{failed} = %d, want 1", got)
	}
}

// The snapshot a scrape reads: this master, its workers by state, the new master during
// an upgrade. Published only when there is an endpoint.
func TestMetricsSnapshot(t *testing.T) {
	m, s := reach(t, roleServing)
	m.handle(sigEvent{syscall.SIGHUP})
	if m.metrics.pub.Load() != nil {
		t.Fatal("a snapshot published with no metrics endpoint")
	}
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	readyAll(m)
	exitRetiring(m)
	m.metrics.sock = new(fdstore.Listener) // (the fake has no sockets) an endpoint
	m.handle(sigEvent{syscall.SIGUSR2})
	snap := m.metrics.pub.Load()
	if snap == nil || snap.Generation != 1 || snap.PID != m.pid || snap.NewMaster != m.up.pid {
		t.Fatalf("snapshot %+v", snap)
	}
	ready := 0
	for _, w := range snap.Workers {
		if w.State == "ready" {
			ready++
		}
	}
	if ready != 2 {
		t.Errorf("snapshot workers %+v, want 2 ready", snap.Workers)
	}
	m.metrics.counts.WorkerStarts = 1 << 40
	if snap.Counts.WorkerStarts == 1<<40 {
		t.Error("the published snapshot shares the loop's counts")
	}
}
