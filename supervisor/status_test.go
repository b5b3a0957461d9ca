//go:build linux

package supervisor

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/sdnotify"
)

// What `baton status` says, with the fake system and clock: the step an upgrade is at and
// its deadline, the new master's workers, the history, the last error.

func stepText(t *testing.T, m *Master) string {
	t.Helper()
	st := m.status()
	if st.Step == nil {
		return ""
	}
	return st.Step.Text
}

func wantText(t *testing.T, what, got string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(got, sub) {
			t.Errorf("%s = %q, want it to contain %q", what, got, sub)
		}
	}
}

func progress(m *Master, ready int, states ...string) {
	n := &MasterSnapshot{PID: m.up.pid, Generation: 2, State: "joining", Version: "v2", Exe: "/usr/bin/baton", Ready: ready, Wanted: len(states)}
	for i, st := range states {
		n.Workers = append(n.Workers, WorkerStatus{Slot: i + 1, PID: 3000 + i, Pool: 1, State: st, Role: "current", StartedAt: time.Unix(1_000_000, 0)})
	}
	m.handle(newMasterMsg{m.up, handoffMsg{Type: "progress", Progress: n}})
}

func TestStatusUpgradeStepsAndDeadlines(t *testing.T) {
	m, s := reach(t, roleUpgrading)
	s.clock = s.clock.Add(37 * time.Second)
	wantText(t, "step", stepText(t, m), "waiting for the new master to be ready", "times out in 23s")
	progress(m, 1, "ready", "starting")
	st := m.status()
	wantText(t, "step", st.Step.Text, "(1 of 2 workers ready)", "times out in 23s")
	if st.Step.Remaining != "23s" || st.Step.Deadline == nil {
		t.Errorf("step remaining %q, deadline %v", st.Step.Remaining, st.Step.Deadline)
	}
	n := st.Upgrade.NewMaster
	if n == nil || n.PID != m.up.pid || n.Version != "v2" || len(n.Workers) != 2 || n.Workers[1].State != "starting" || n.Workers[0].Uptime != "37s" {
		t.Fatalf("new master in status: %+v", n)
	}

	m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
	s.clock = s.clock.Add(2 * time.Second)
	wantText(t, "step", stepText(t, m), "soaking: commits automatically in 3s")

	s.fire(s.armedOf(tSoak)[0])
	s.clock = s.clock.Add(21 * time.Second)
	wantText(t, "step", stepText(t, m), "committing: 2 of 2 old workers still draining (stop timeout in 9s)")
	if strings.Contains(m.statusLine(), "WINCH") {
		t.Errorf("status line while committing: %q", m.statusLine())
	}
	m.handle(workerExit{w: s.workers(m.retiring[0])[0], status: exitStatus{known: true}})
	wantText(t, "step", stepText(t, m), "committing: 1 of 2 old workers still draining")

	exitRetiring(m)
	if m.role != roleHandingOver {
		t.Fatalf("role %s", m.role)
	}
	wantText(t, "step", stepText(t, m), "handing over to systemd")
	wantText(t, "status line", m.statusLine(), "handing over")
}

func TestStatusManualCommitWaitsForTheOperator(t *testing.T) {
	m, s := testMaster(t, false, true, func(c *config.Config) { c.Upgrade.Commit = config.CommitManual })
	m.start()
	readyAll(m)
	m.handle(sigEvent{syscall.SIGUSR2})
	m.handle(newMasterMsg{m.up, handoffMsg{Type: "ready"}})
	s.clock = s.clock.Add(time.Hour)
	st := m.status()
	if st.Step == nil || st.Step.Name != "manual-commit" || st.Step.Deadline != nil {
		t.Fatalf("step %+v", st.Step)
	}
	wantText(t, "step", st.Step.Text, "manual commit: waits for the operator")
}

func TestStatusReloadInFlight(t *testing.T) {
	m, s := reach(t, roleServing)
	m.handle(sigEvent{syscall.SIGHUP})
	wantText(t, "step", stepText(t, m), "reloading: reading the config")
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	s.clock = s.clock.Add(10 * time.Second)
	m.handle(notifyEvent{msg: readyMsg(s.workers(m.reload.pool)[0].pid)})
	wantText(t, "step", stepText(t, m), "reloading: 1 of 2 new workers ready (times out in 20s)")
	readyAll(m)
	if st := m.status(); st.Step != nil {
		t.Errorf("step after the reload: %+v", st.Step)
	}
}

func TestHistoryCrossesTheCommit(t *testing.T) {
	m, s := reach(t, roleServing)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], err: fmt.Errorf("web.toml:8: worker.count: must be 1..1024")})
	if !strings.Contains(m.lastErr, "web.toml:8") {
		t.Fatalf("last error %q", m.lastErr)
	}
	m.handle(sigEvent{syscall.SIGUSR2})
	h := s.hello.History
	if len(h) != 2 || h[0].Event != "start" || h[1].Event != "reload" || h[1].Result != "failed" || !strings.Contains(h[1].Reason, "web.toml:8") {
		t.Fatalf("history in hello: %+v", h)
	}

	// The new master, given that hello, adds the upgrade when it is committed.
	n, ns := testMaster(t, true, true, nil)
	n.history = validHistory(h)
	n.start()
	readyAll(n)
	ns.clock = ns.clock.Add(3 * time.Second)
	n.handle(oldMasterMsg{n.parent, handoffMsg{Type: "commit"}})
	got := n.status()
	if len(got.History) != 3 || got.History[2].Event != "upgrade" || got.History[2].Result != "ok" || got.History[2].Generation != 2 {
		t.Fatalf("history after the commit: %+v", got.History)
	}
	if got.LastError != "" {
		t.Errorf("a new master in charge shows the old one's error: %q", got.LastError)
	}
}

func TestLastErrorClearedByLaterSuccess(t *testing.T) {
	m, s := reach(t, roleServing)
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], err: fmt.Errorf("web.toml:8: bad")})
	if m.status().LastError == "" || !strings.Contains(m.statusLine(), "last error") {
		t.Fatalf("no last error after a failed reload: %q", m.statusLine())
	}
	m.handle(sigEvent{syscall.SIGUSR2})
	m.handle(newMasterExited{up: m.up, how: "killed by SIGKILL"})
	wantText(t, "status line", m.statusLine(), "last error: upgrade rolled back", "killed by SIGKILL")
	s.loads = nil
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	readyAll(m)
	st := m.status()
	if st.LastError != "" || strings.Contains(st.Line, "last error") {
		t.Fatalf("last error after a successful reload: %q, line %q", st.LastError, st.Line)
	}
	var results []string
	for _, e := range st.History {
		results = append(results, e.Event+" "+e.Result)
	}
	if got, want := strings.Join(results, ", "), "start ok, reload failed, upgrade rolled back, reload ok"; got != want {
		t.Fatalf("history %q, want %q", got, want)
	}
}

func TestCrashLoopErrorClearedWhenTheSlotRecovers(t *testing.T) {
	m, s := reach(t, roleServing)
	for range crashLoop {
		w := s.workers(m.current)[0]
		m.handle(workerExit{w: w, status: exitStatus{known: true, code: 2}})
		s.fire(s.armedOf(tRestart)[0])
	}
	wantText(t, "last error", m.lastErr, "worker 1 crash loop", "exit status 2")
	readyAll(m)
	if m.lastErr != "" {
		t.Fatalf("last error after the slot is ready again: %q", m.lastErr)
	}
	if h := m.history[len(m.history)-1]; h.Event != "worker-crash-loop" {
		t.Fatalf("history %+v", m.history)
	}
	if ws := m.status().Workers; ws[0].Restarts != crashLoop {
		t.Errorf("restarts of slot 1: %d, want %d", ws[0].Restarts, crashLoop)
	}
}

func TestUpgradeTimeoutSaysWhatItWaitedFor(t *testing.T) {
	m, s := reach(t, roleUpgrading)
	progress(m, 1, "ready", "starting")
	s.fire(s.armedOf(tUpgradeReady)[0])
	m.handle(newMasterExited{up: m.up, how: "exit status 0"})
	wantText(t, "last error", m.lastErr, "not ready within 1m0s", "1 of 2 workers ready", "worker 2 (pid 3001) starting")

	m, s = reach(t, roleUpgrading)
	s.fire(s.armedOf(tUpgradeReady)[0])
	m.handle(newMasterExited{up: m.up, how: "killed by SIGKILL"})
	wantText(t, "last error", m.lastErr, "never reported its progress")
}

func TestRollbackReasonsReachTheWaitingClient(t *testing.T) {
	for _, tt := range []struct {
		name string
		do   func(m *Master)
		want string
	}{
		{"config", func(m *Master) {
			m.handle(newMasterMsg{m.up, handoffMsg{Type: "error", Reason: "/etc/x.toml:4: worker.x: unknown key"}})
			m.handle(newMasterMsg{m.up, handoffMsg{Type: "exit", Code: 1, Reason: "/etc/x.toml:4: worker.x: unknown key"}})
			m.handle(newMasterExited{up: m.up, how: "exit status 1"})
		}, "/etc/x.toml:4: worker.x"},
		{"worker", func(m *Master) {
			m.handle(newMasterMsg{m.up, handoffMsg{Type: "error", Reason: "worker 2 (pid 4242) killed by SIGSEGV"}})
			m.handle(newMasterExited{up: m.up, how: "exit status 1"})
		}, "worker 2 (pid 4242) killed by SIGSEGV"},
		{"killed", func(m *Master) { m.handle(newMasterExited{up: m.up, how: "killed by SIGKILL"}) }, "exited without a word: killed by SIGKILL"},
		{"unknown", func(m *Master) { m.handle(newMasterExited{up: m.up}) }, "exit status unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := testMaster(t, false, true, nil)
			m.start()
			readyAll(m)
			var got []ControlReply
			m.handle(controlEvent{req: ControlRequest{Verb: "upgrade", Wait: true}, reply: func(r ControlReply) { got = append(got, r) }})
			tt.do(m)
			if len(got) != 1 || got[0].OK || !strings.Contains(got[0].Error, tt.want) {
				t.Fatalf("reply %+v, want an error with %q", got, tt.want)
			}
			if h := m.history[len(m.history)-1]; h.Result != "rolled back" || !strings.Contains(h.Reason, tt.want) {
				t.Fatalf("history %+v", h)
			}
		})
	}
	m, s := testMaster(t, false, true, nil)
	m.start()
	readyAll(m)
	s.failNew = true
	m.handle(sigEvent{syscall.SIGUSR2})
	if h := m.history[len(m.history)-1]; h.Event != "upgrade" || h.Result != "failed" || !strings.Contains(h.Reason, "exec format error") {
		t.Fatalf("history after an exec error: %+v", m.history)
	}
}

func TestProgressIsRateBounded(t *testing.T) {
	m, s := testMaster(t, true, true, nil)
	m.start()
	m.handle(ctlStatus()) // any event: the first progress goes out at once
	if len(s.sent) != 1 || s.sent[0].Type != "progress" || s.sent[0].Progress.Wanted != 2 || s.sent[0].Progress.Ready != 0 {
		t.Fatalf("sent %+v", s.sent)
	}
	w := s.workers(m.current)[0]
	m.handle(notifyEvent{msg: readyMsg(w.pid)})
	if len(s.sent) != 1 || len(s.armedOf(tProgress)) != 1 {
		t.Fatalf("a change within progressEvery: sent %d, progress timers %d", len(s.sent), len(s.armedOf(tProgress)))
	}
	m.handle(ctlStatus()) // nothing new: nothing sent, the timer stays
	s.clock = s.clock.Add(progressEvery)
	s.fire(s.armedOf(tProgress)[0])
	if len(s.sent) != 2 || s.sent[1].Progress.Ready != 1 {
		t.Fatalf("held-back progress not sent: %+v", s.sent)
	}
	m.handle(ctlStatus())
	if len(s.sent) != 2 {
		t.Fatalf("an unchanged snapshot sent again: %d", len(s.sent))
	}
	s.clock = s.clock.Add(progressEvery)
	readyAll(m)
	if last := s.sent[len(s.sent)-1]; s.sent[len(s.sent)-2].Type != "ready" || last.Progress == nil || last.Progress.Ready != 2 || last.Progress.State != "awaiting-commit" {
		t.Fatalf("sent %+v", s.sent)
	}
	m.handle(oldMasterMsg{m.parent, handoffMsg{Type: "commit"}})
	if len(s.armedOf(tProgress)) != 0 {
		t.Fatal("progress timer left armed after the commit")
	}
}

func TestProgressFromNewMasterIsValidated(t *testing.T) {
	many := make([]WorkerStatus, 5000)
	for _, tt := range []struct {
		name string
		n    *MasterSnapshot
		ok   bool
	}{
		{"nil", nil, false},
		{"other pid", &MasterSnapshot{PID: 1, Generation: 2}, false},
		{"more ready than wanted", &MasterSnapshot{PID: 77, Generation: 2, Ready: 3, Wanted: 2}, false},
		{"negative", &MasterSnapshot{PID: 77, Generation: 2, Ready: -1}, false},
		{"newlines and length", &MasterSnapshot{PID: 77, Generation: 2, Version: "v1\nlast error: none\x1b[2J" + strings.Repeat("x", 5000)}, true},
		{"too many workers", &MasterSnapshot{PID: 77, Generation: 2, Workers: many}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := validSnapshot(tt.n, 77); got != tt.ok {
				t.Fatalf("valid = %v, want %v", got, tt.ok)
			}
			if !tt.ok {
				return
			}
			if strings.ContainsAny(tt.n.Version, "\n\x1b") || len(tt.n.Version) > maxText+len("…") {
				t.Errorf("version not cleaned: %q", tt.n.Version)
			}
			if len(tt.n.Workers) > maxSnapshotWorkers {
				t.Errorf("%d workers kept", len(tt.n.Workers))
			}
		})
	}
	// The message with the most workers N sends fits readMsg's buffer.
	n := &MasterSnapshot{PID: 77, Generation: 2}
	for i := range maxSnapshotWorkers {
		n.Workers = append(n.Workers, WorkerStatus{Slot: i + 1, PID: 4_000_000, Pool: 99, State: "lingering", Role: "reload candidate", Status: strings.Repeat("s", maxText), StartedAt: time.Now(), Failures: 9, Restarts: 99})
	}
	b, _ := json.Marshal(handoffMsg{Type: "progress", Progress: n})
	if len(b) >= 64<<10 {
		t.Fatalf("largest progress message: %d bytes", len(b))
	}
	// And the largest history a hello carries.
	m, _ := reach(t, roleServing)
	for range 2 * historyLen {
		m.record("reload", "failed", strings.Repeat("\x00é", 5000), time.Time{})
	}
	b, _ = json.Marshal(handoffMsg{Type: "hello", History: m.history})
	if len(m.history) != historyLen || len(b) >= 64<<10 {
		t.Fatalf("largest hello: %d entries, %d bytes", len(m.history), len(b))
	}
	if h := validHistory(m.history); len(h) != historyLen || strings.Contains(h[0].Reason, "\x00") {
		t.Fatalf("history taken from a hello: %d entries, first reason %q", len(h), h[0].Reason[:20])
	}
}

func TestListenerSources(t *testing.T) {
	m, _ := reach(t, roleServing)
	act := &fdstore.Listener{Name: "web", Network: "tcp", Addr: "127.0.0.1:80", Source: fdstore.Activated}
	stored := &fdstore.Listener{Name: storePrefix + "api", Network: "tcp", Addr: "127.0.0.1:81", Source: fdstore.Activated}
	opened := &fdstore.Listener{Name: "admin", Network: "unix", Addr: "/run/a.sock", Source: fdstore.Opened}
	handed := &fdstore.Listener{Name: "old", Network: "tcp", Addr: "127.0.0.1:82", Source: fdstore.Opened}
	m.origins = map[*fdstore.Listener]string{act: "activated", stored: "activated", handed: "handed over"}
	for _, l := range fromStore([]*fdstore.Listener{act, stored}) {
		m.origins[l] = "fdstore"
	}
	m.listeners = []*fdstore.Listener{act, stored, opened, handed}
	var got []string
	for _, l := range m.status().Listeners {
		got = append(got, l.Name+"="+l.Source)
	}
	if want := "web=activated api=fdstore admin=opened old=handed over"; strings.Join(got, " ") != want {
		t.Fatalf("listeners %q, want %q", strings.Join(got, " "), want)
	}
}

// TestPidfdExit asks the kernel how a real process that is not a child of the asker ended
// (here it is one, reaped by os/exec: the ioctl does not care who reaps).
func TestPidfdExit(t *testing.T) {
	for _, tt := range []struct {
		name string
		sig  syscall.Signal
		want string
	}{
		{"kill -9", syscall.SIGKILL, "killed by SIGKILL"},
		{"exit 3", 0, "exit status 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pidfd := -1
			cmd := exec.Command("/bin/sh", "-c", "read x; exit 3")
			cmd.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(pidfd)
			if tt.sig != 0 {
				cmd.Process.Signal(tt.sig)
			} else {
				in.Close()
			}
			cmd.Wait()
			got := pidfdExit(pidfd, time.Second)
			if strings.Contains(got, "kernel < 6.15") {
				t.Skipf("%s: %s", tt.name, got)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func readyMsg(pid int) sdnotify.Message {
	return sdnotify.Message{PID: int32(pid), Fields: []sdnotify.Field{{Key: "READY", Value: "1"}}}
}

func ctlStatus() controlEvent {
	return controlEvent{req: ControlRequest{Verb: "status"}, reply: func(ControlReply) {}}
}
