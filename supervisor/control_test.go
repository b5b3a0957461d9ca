//go:build linux

package supervisor

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
)

// replies records what the master answers one request, in order.
type replies []ControlReply

func (rs *replies) reply(r ControlReply) { *rs = append(*rs, r) }

// ask sends a request to the master as the control socket does.
func ask(m *Master, verb string, wait, progress bool) *replies {
	rs := new(replies)
	m.handle(controlEvent{req: ControlRequest{Verb: verb, Wait: wait, Progress: progress}, reply: rs.reply})
	return rs
}

// pendingThen checks that rs is one pending line due by the master's worst case for verb,
// then (if result) a result.
func pendingThen(t *testing.T, m *Master, verb string, rs *replies, result bool) {
	t.Helper()
	want := 1
	if result {
		want = 2
	}
	if len(*rs) != want {
		t.Fatalf("%s: %d replies %+v, want %d", verb, len(*rs), *rs, want)
	}
	p := (*rs)[0]
	if !p.Pending || !p.OK || p.Message == "" {
		t.Fatalf("%s: first reply %+v, want a pending line with a message", verb, p)
	}
	d, err := time.Parse(time.RFC3339, p.Deadline)
	if err != nil {
		t.Fatalf("%s: deadline %q: %v", verb, p.Deadline, err)
	}
	if got, bound := d.Sub(m.sys.now()), m.waitBound(verb); got < bound || got > bound+time.Second {
		t.Errorf("%s: deadline %s after now, want %s (the master's worst case)", verb, got, bound)
	}
	if result && (*rs)[1].Pending {
		t.Fatalf("%s: second reply %+v is pending too", verb, (*rs)[1])
	}
}

// commitUpgrade drives the upgrade in flight (its new master ready) to its end: soak (auto),
// the old workers' drain, systemd's barrier.
func commitUpgrade(t *testing.T, m *Master, s *fakeSystem) {
	t.Helper()
	if ts := s.armedOf(tSoak); len(ts) > 0 {
		s.fire(ts[0])
	}
	exitRetiring(m)
	for _, up := range s.hands {
		m.handle(handOverDone{up: up})
	}
	s.hands = nil
	if m.role != roleExited {
		t.Fatalf("role %s, want exited after the commit", m.role)
	}
}

func TestUpgradeWaitPendingThenResult(t *testing.T) {
	// With progress: a pending line at once, the result at the commit.
	m, s := reach(t, roleServing)
	rs := ask(m, "upgrade", true, true)
	pendingThen(t, m, "upgrade", rs, false)
	if !strings.Contains((*rs)[0].Message, "new master pid") {
		t.Errorf("pending line %+v does not name the new master", (*rs)[0])
	}
	m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
	commitUpgrade(t, m, s)
	pendingThen(t, m, "upgrade", rs, true)
	if r := (*rs)[1]; !r.OK || r.InFlight || !strings.Contains(r.Message, "committed") {
		t.Errorf("result %+v, want committed", r)
	}

	// Without progress (an older client): the result alone, as ever.
	m, _ = reach(t, roleServing)
	rs = ask(m, "upgrade", true, false)
	m.handle(newMasterMsg{m.up, handoffMsg{Type: "exit", Code: 1, Reason: "web.toml:8: worker.count: bad"}})
	m.handle(newMasterExited{up: m.up})
	if len(*rs) != 1 || (*rs)[0].OK || !strings.Contains((*rs)[0].Error, "web.toml:8") {
		t.Fatalf("replies %+v, want one error with the new master's reason", *rs)
	}

	// Refused at once: no pending line.
	rs = ask(m, "rollback", true, true)
	if len(*rs) != 1 || (*rs)[0].OK || (*rs)[0].Pending {
		t.Fatalf("rollback with no upgrade: %+v, want one refusal", *rs)
	}
	// Not waited for: the one line says it started.
	rs = ask(m, "upgrade", false, true)
	if len(*rs) != 1 || !(*rs)[0].OK || (*rs)[0].Pending {
		t.Fatalf("upgrade without wait: %+v, want one reply", *rs)
	}
}

// commit = "manual": the wait of `upgrade --wait` ends when the new master is ready, saying
// it waits for the operator; `baton commit --wait` then waits for the commit.
func TestManualCommit(t *testing.T) {
	m, s := testMaster(t, false, true, func(c *config.Config) { c.Upgrade.Commit = config.CommitManual })
	m.start()
	readyAll(m)
	up := ask(m, "upgrade", true, true)
	early := ask(m, "commit", false, false) // before the new master is ready: remembered
	if len(*early) != 1 || !(*early)[0].OK || !strings.Contains((*early)[0].Message, "not ready yet") {
		t.Fatalf("commit before ready: %+v", *early)
	}
	if m.role != roleUpgrading || !m.up.quit {
		t.Fatalf("role %s, quit %v: want upgrading with the commit remembered", m.role, m.up.quit)
	}
	m.up.quit = false // forget it: the operator's commit comes after ready below

	m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
	if m.role != roleSoaking || len(s.armedOf(tSoak)) != 0 {
		t.Fatalf("role %s, soak armed %d: want soaking, no soak timer", m.role, len(s.armedOf(tSoak)))
	}
	pendingThen(t, m, "upgrade", up, true)
	if r := (*up)[1]; !r.OK || !r.InFlight || !strings.Contains(r.Message, "baton commit") {
		t.Fatalf("upgrade --wait result %+v, want in flight, waiting for the operator", r)
	}

	cm := ask(m, "commit", true, true)
	if m.role != roleCommitting {
		t.Fatalf("role %s after commit, want committing", m.role)
	}
	pendingThen(t, m, "commit", cm, false)
	again := ask(m, "commit", true, true)
	if len(*again) != 1 || (*again)[0].OK || !strings.Contains((*again)[0].Error, "being committed already") {
		t.Fatalf("a second commit: %+v, want a refusal", *again)
	}
	commitUpgrade(t, m, s)
	pendingThen(t, m, "commit", cm, true)
	if r := (*cm)[1]; !r.OK || !strings.Contains(r.Message, "committed") {
		t.Fatalf("commit --wait result %+v, want committed", r)
	}
	if len(*up) != 2 {
		t.Fatalf("upgrade --wait answered again: %+v", *up)
	}
}

// `baton commit --wait` hears a rollback as a failure; refusals are errors.
func TestCommitRefusedOrRolledBack(t *testing.T) {
	for _, r := range []role{roleServing, roleStarting, roleCommitting, roleHandingOver, roleRollingBack, roleStopping, roleJoining} {
		m, _ := reach(t, r)
		rs := ask(m, "commit", true, true)
		if len(*rs) != 1 || (*rs)[0].OK || !strings.HasPrefix((*rs)[0].Error, "commit refused: ") {
			t.Errorf("%s: %+v, want one refusal", r, *rs)
		}
	}
	m, _ := reach(t, roleUpgrading)
	rs := ask(m, "commit", true, true)
	m.handle(newMasterExited{up: m.up})
	pendingThen(t, m, "commit", rs, true)
	if r := (*rs)[1]; r.OK || !strings.Contains(r.Error, "rolled back") {
		t.Fatalf("commit --wait of an upgrade that failed: %+v, want the rollback", r)
	}
}

func TestPendingLinesOfEveryWaitedVerb(t *testing.T) {
	m, s := reach(t, roleServing)
	rs := ask(m, "reload", true, true)
	pendingThen(t, m, "reload", rs, false)
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	readyAll(m)
	pendingThen(t, m, "reload", rs, true)

	m, _ = reach(t, roleSoaking)
	rs = ask(m, "rollback", true, true)
	pendingThen(t, m, "rollback", rs, false)
	m.handle(newMasterExited{up: m.up})
	pendingThen(t, m, "rollback", rs, true)
	if !(*rs)[1].OK {
		t.Errorf("rollback result %+v", (*rs)[1])
	}

	m, _ = reach(t, roleServing)
	rs = ask(m, "stop", true, true)
	pendingThen(t, m, "stop", rs, false)
	ask(m, "status", true, true) // status has nothing to wait for
}

// The master's worst cases follow its config: upgrade.timeout, soak, stop_timeout.
func TestWaitBound(t *testing.T) {
	m, _ := testMaster(t, false, true, func(c *config.Config) {
		c.Upgrade.Timeout, c.Upgrade.Soak, c.Worker.StopTimeout = 60*time.Second, 5*time.Second, 30*time.Second
	})
	// 60 ready + 5 soak + 30 drain + 10 hand-over + 35 back out + 5 margin
	if got, want := m.waitBound("upgrade"), 145*time.Second; got != want {
		t.Errorf("upgrade: %s, want %s", got, want)
	}
	m.cfg.Upgrade.Commit = config.CommitManual
	if got, want := m.waitBound("upgrade"), 140*time.Second; got != want {
		t.Errorf("upgrade, manual commit: %s, want %s", got, want)
	}
	m.cfg.Worker.StopTimeout = 10 * time.Minute
	if got := m.waitBound("stop"); got < 10*time.Minute {
		t.Errorf("stop with stop_timeout 10m: %s", got)
	}
	// stop_spread delays the last old worker's stop signal: a commit and a stop wait for
	// it. A new master backing out (rollback) never paces its own.
	m.cfg.Upgrade.Commit = config.CommitAuto
	m.cfg.Worker.StopTimeout, m.cfg.Worker.StopSpread = 30*time.Second, 20*time.Second
	if got, want := m.waitBound("upgrade"), 165*time.Second; got != want {
		t.Errorf("upgrade, stop_spread 20s: %s, want %s", got, want)
	}
	if got := m.waitBound("stop"); got < 20*time.Second+30*time.Second {
		t.Errorf("stop, stop_spread 20s: %s", got)
	}
	m.cfg.Worker.StopSpread = time.Hour
	if got, want := m.waitBound("rollback"), 40*time.Second; got != want {
		t.Errorf("rollback, stop_spread 1h: %s, want %s", got, want)
	}
}

// controlConn writes the pending line and then the result the loop hands it, in order, on
// the connection's goroutine.
func TestControlConnWritesPendingThenResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := &Master{events: make(chan event, 1), done: make(chan struct{})}
	go func() {
		c, err := ln.AcceptUnix()
		if err == nil {
			m.controlConn(c, "")
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(`{"verb":"upgrade","wait":true,"progress":true}` + "\n"))
	var ev controlEvent
	select {
	case e := <-m.events:
		ev = e.(controlEvent)
	case <-time.After(10 * time.Second):
		t.Fatal("no control event posted")
	}
	if !ev.req.Wait || !ev.req.Progress {
		t.Fatalf("request %+v", ev.req)
	}
	r := bufio.NewReader(c)
	read := func() ControlReply {
		t.Helper()
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var rep ControlReply
		if err := json.Unmarshal(line, &rep); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return rep
	}
	ev.reply(ControlReply{OK: true, Pending: true, Message: "upgrade started", Deadline: "2026-12-05T15:00:00Z"})
	if got := read(); !got.Pending || got.Deadline != "2026-12-05T15:00:00Z" {
		t.Fatalf("first line %+v, want the pending line", got)
	}
	ev.reply(ControlReply{OK: true, Message: "upgrade committed"})
	ev.reply(ControlReply{OK: true, Message: "a second result"}) // dropped
	if got := read(); got.Pending || got.Message != "upgrade committed" {
		t.Fatalf("second line %+v, want the result", got)
	}
	if _, err := r.ReadBytes('\n'); err == nil {
		t.Fatal("a line after the result")
	}
}
