//go:build linux

package supervisor

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/sdnotify"
)

// The per-worker watchdog (watchdog.go) on the fake system.

// says makes w send one datagram of KEY=value fields.
func says(m *Master, w *worker, kv ...string) {
	var fs []sdnotify.Field
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		fs = append(fs, sdnotify.Field{Key: k, Value: v})
	}
	m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: fs}})
}

// hasSequence reports whether want occur in effects in this order (others between).
func hasSequence(effects, want []string) bool {
	for _, e := range effects {
		if len(want) > 0 && e == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// deadline is when t runs out.
func deadline(t *timer) time.Time { return t.at.Add(t.d) }

// TestWatchdogTimeout: a ready worker that sends no WATCHDOG=1 within its interval gets
// its stop signal, SIGKILL after the shorter of stop_timeout and the interval, and is
// restarted with backoff; status and STATUS= say why until its slot is ready again.
func TestWatchdogTimeout(t *testing.T) {
	m, s := reach(t, roleServing, withWatchdog)
	w := m.current.workers[0]
	if w.timer == nil || w.timer.kind != tWorkerWatchdog || w.timer.d != 10*time.Second {
		t.Fatalf("ready worker's timer %+v, want its watchdog of 10s", w.timer)
	}
	n := len(s.effects)
	s.fire(w.timer)
	if want := []string{fmt.Sprintf("signal %d TERM", w.pid), fmt.Sprintf("signal %d %s", w.pid, signalName(syscall.SIGCONT))}; !hasSequence(s.effects[n:], want) || hasEffect(s, n, "KILL") {
		t.Fatalf("effects %q: want the stop signal, then SIGCONT, no SIGKILL yet", s.effects[n:])
	}
	if w.state != workerStopping || w.timer == nil || w.timer.kind != tWorkerKill || w.timer.d != 10*time.Second {
		t.Fatalf("state %s, timer %+v: want stopping, SIGKILL in 10s (the interval, shorter than stop_timeout)", w.state, w.timer)
	}
	const why = "watchdog timeout (no WATCHDOG=1 within 10s)"
	if !strings.Contains(m.lastErr, why) || !strings.Contains(m.statusLine(), why) {
		t.Errorf("last error %q, status line %q: want %q", m.lastErr, m.statusLine(), why)
	}
	if st := m.status(); st.Workers[0].Failure != why {
		t.Errorf("baton status worker %+v: want failure %q", st.Workers[0], why)
	}
	if m.metrics.counts.WorkerWatchdogs != 1 {
		t.Errorf("watchdog failures counted %d, want 1", m.metrics.counts.WorkerWatchdogs)
	}
	// A SIGSTOPped worker does not act on its stop signal: SIGKILL at the grace.
	s.fire(w.timer)
	if !hasEffect(s, n, fmt.Sprintf("signal %d KILL", w.pid)) {
		t.Fatalf("no SIGKILL after the grace: %q", s.effects[n:])
	}
	m.handle(workerExit{w: w, status: exitStatus{known: true, signal: syscall.SIGKILL}})
	if m.current.restart[0] == nil || m.role != roleServing {
		t.Fatalf("role %s, restart %v: want the slot restarted, serving", m.role, m.current.restart[0])
	}
	s.fire(m.current.restart[0])
	nw := m.current.workers[0]
	if nw == nil || nw == w {
		t.Fatal("no new worker in the slot")
	}
	if st := m.status(); !strings.Contains(st.Workers[0].LastFailure, why) || st.Workers[0].Restarts != 1 {
		t.Errorf("baton status worker %+v: want last failure %q, 1 restart", st.Workers[0], why)
	}
	says(m, nw, "READY=1")
	if m.lastErr != "" {
		t.Errorf("last error %q once the slot is ready again", m.lastErr)
	}
	if nw.timer == nil || nw.timer.kind != tWorkerWatchdog {
		t.Errorf("the new worker's watchdog is not armed: %+v", nw.timer)
	}
	checkInvariants(t, m, s)
}

// TestWatchdogPing: each WATCHDOG=1 from a ready worker starts its interval again; one
// before READY=1 changes nothing (start_timeout governs); a ping from another pid is not
// the worker's.
func TestWatchdogPing(t *testing.T) {
	m, s := reach(t, roleStarting, withWatchdog)
	w := m.current.workers[0]
	start := w.timer
	s.clock = s.clock.Add(time.Second)
	says(m, w, "WATCHDOG=1")
	if w.timer != start || len(s.armedOf(tWorkerWatchdog)) != 0 {
		t.Fatalf("WATCHDOG=1 before READY=1 changed the timers: %+v", w.timer)
	}
	says(m, w, "READY=1")
	first := w.timer
	s.clock = s.clock.Add(8 * time.Second)
	says(m, w, "WATCHDOG=1")
	if w.timer == first || !deadline(w.timer).Equal(s.clock.Add(10*time.Second)) || len(s.armedOf(tWorkerWatchdog)) != 1 {
		t.Fatalf("after a ping: timer %+v (deadline %s, now %s), %d watchdogs armed: want one, 10s from now",
			w.timer, deadline(w.timer), s.clock, len(s.armedOf(tWorkerWatchdog)))
	}
	before := w.timer
	m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid + 1000), Fields: []sdnotify.Field{{Key: "WATCHDOG", Value: "1"}}}})
	if w.timer != before {
		t.Fatal("a ping from a stranger reset the worker's watchdog")
	}
	// A stale firing (the timer a ping replaced) changes nothing.
	n := len(s.effects)
	m.handle(timerFired{first})
	if hasEffect(s, n, "signal") || w.state != workerReady {
		t.Fatalf("a replaced watchdog timer stopped the worker: %q", s.effects[n:])
	}
	checkInvariants(t, m, s)
}

// TestWatchdogOff: without a watchdog no timer is armed and pings change nothing.
func TestWatchdogOff(t *testing.T) {
	m, s := reach(t, roleServing)
	w := m.current.workers[0]
	says(m, w, "WATCHDOG=1")
	if w.timer != nil || len(s.armedOf(tWorkerWatchdog)) != 0 {
		t.Fatalf("watchdog armed with watchdog off: %+v", w.timer)
	}
}

// TestWatchdogTrigger: WATCHDOG=trigger fails the worker at once, ready or starting; one
// that is stopping already is left to its stop.
func TestWatchdogTrigger(t *testing.T) {
	for _, ready := range []bool{true, false} {
		r := roleStarting
		if ready {
			r = roleServing
		}
		m, s := reach(t, r, withWatchdog)
		w := m.current.workers[1]
		n := len(s.effects)
		says(m, w, "WATCHDOG=trigger")
		if !hasEffect(s, n, fmt.Sprintf("signal %d TERM", w.pid)) || w.failReason != "watchdog trigger" {
			t.Fatalf("ready=%v: effects %q, reason %q", ready, s.effects[n:], w.failReason)
		}
		kill := w.timer
		says(m, w, "WATCHDOG=trigger")
		if w.timer != kill || m.metrics.counts.WorkerWatchdogs != 1 {
			t.Fatalf("ready=%v: a second trigger while stopping re-armed or counted: %d", ready, m.metrics.counts.WorkerWatchdogs)
		}
		m.handle(workerExit{w: w, status: exitStatus{known: true, code: 0}})
		if m.current.restart[1] == nil || !strings.Contains(m.current.lastFail[1], "watchdog trigger") {
			t.Fatalf("ready=%v: restart %v, last failure %q", ready, m.current.restart[1], m.current.lastFail[1])
		}
		checkInvariants(t, m, s)
	}
}

// TestWatchdogUsec: WATCHDOG_USEC= changes the worker's own interval and re-arms it from
// now; what is not a number of microseconds within bounds, zero included, is refused.
func TestWatchdogUsec(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration // 0: refused, the interval stays 10s
	}{
		{"2000000", 2 * time.Second},
		{"100000", config.MinWatchdog},
		{"3600000000", config.MaxWatchdog},
		{"99999", 0},
		{"3600000001", 0},
		{"0", 0},
		{"-1", 0},
		{"1e6", 0},
		{" 2000000", 0},
		{"99999999999999999999999", 0},
		{"", 0},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			m, s := reach(t, roleServing, withWatchdog)
			w := m.current.workers[0]
			s.clock = s.clock.Add(3 * time.Second)
			old := w.timer
			says(m, w, "WATCHDOG_USEC="+tt.value)
			if tt.want == 0 {
				if w.watchdogInterval() != 10*time.Second || w.timer != old {
					t.Fatalf("refused value changed the watchdog: %s, timer %+v", w.watchdogInterval(), w.timer)
				}
				return
			}
			if w.watchdogInterval() != tt.want || w.timer.d != tt.want || !w.timer.at.Equal(s.clock) {
				t.Fatalf("interval %s, timer %+v: want %s from now", w.watchdogInterval(), w.timer, tt.want)
			}
			checkInvariants(t, m, s)
		})
	}
	// Sent while starting, with READY=1 in the same datagram or later: armed with it.
	m, _ := reach(t, roleStarting)
	w := m.current.workers[0]
	says(m, w, "WATCHDOG_USEC=5000000")
	if w.timer.kind != tWorkerStart {
		t.Fatalf("a starting worker's watchdog armed before READY=1")
	}
	says(m, w, "READY=1")
	if w.timer == nil || w.timer.kind != tWorkerWatchdog || w.timer.d != 5*time.Second {
		t.Fatalf("timer %+v at READY=1: want the worker's own 5s watchdog (the config has none)", w.timer)
	}
}

// TestExtendStartTimeout: EXTEND_TIMEOUT_USEC= from a starting worker moves its start
// deadline to now + the value, never before start_timeout and never past maxStartStretch
// start timeouts after its start; from a ready worker it does nothing.
func TestExtendStartTimeout(t *testing.T) {
	m, s := reach(t, roleStarting) // start_timeout 30s
	w := m.current.workers[0]
	t0 := w.started
	s.clock = t0.Add(10 * time.Second)
	says(m, w, "EXTEND_TIMEOUT_USEC=60000000")
	if got := deadline(w.timer); !got.Equal(t0.Add(70 * time.Second)) {
		t.Fatalf("deadline %s after start, want 1m10s", got.Sub(t0))
	}
	s.clock = t0.Add(20 * time.Second)
	says(m, w, "EXTEND_TIMEOUT_USEC=1000000") // now+1s is before start_timeout: the original holds
	if got := deadline(w.timer); !got.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("deadline %s after start, want 30s (never before start_timeout)", got.Sub(t0))
	}
	s.clock = t0.Add(25 * time.Second)
	says(m, w, "EXTEND_TIMEOUT_USEC=9223372036854775") // the most a Duration holds
	if got := deadline(w.timer); !got.Equal(t0.Add(maxStartStretch * 30 * time.Second)) {
		t.Fatalf("deadline %s after start, want %s (the cap)", got.Sub(t0), maxStartStretch*30*time.Second)
	}
	for _, bad := range []string{"-1", "x", "", "184467440737095516160"} {
		before := w.timer
		says(m, w, "EXTEND_TIMEOUT_USEC="+bad)
		if w.timer != before {
			t.Fatalf("EXTEND_TIMEOUT_USEC=%q changed the start deadline", bad)
		}
	}
	checkInvariants(t, m, s)
	s.clock = t0.Add(maxStartStretch * 30 * time.Second)
	s.fire(w.timer)
	if !strings.Contains(w.failReason, "not ready within 5m0s (start_timeout 30s, extended by EXTEND_TIMEOUT_USEC=)") {
		t.Errorf("reason %q: want the extended window", w.failReason)
	}

	// A ready worker's extension is not a watchdog's.
	m, s = reach(t, roleServing, withWatchdog)
	w = m.current.workers[0]
	before := w.timer
	says(m, w, "EXTEND_TIMEOUT_USEC=60000000")
	if w.timer != before {
		t.Fatalf("EXTEND_TIMEOUT_USEC= from a ready worker changed its timer: %+v", w.timer)
	}
	checkInvariants(t, m, s)
}

// TestWatchdogFailsReload: a reload's new worker that misses its watchdog before every new
// worker is ready fails the reload (the failure path is the one of any exit); the old
// workers keep serving.
func TestWatchdogFailsReload(t *testing.T) {
	m, s := reach(t, roleServing, withWatchdog)
	old := m.current
	m.handle(sigEvent{syscall.SIGHUP})
	m.handle(configLoaded{seq: s.loads[0], cfg: m.cfg})
	nw := m.reload.pool.workers[0]
	says(m, nw, "READY=1")
	s.fire(nw.timer)
	m.handle(workerExit{w: nw, status: exitStatus{known: true, signal: syscall.SIGTERM}})
	if m.reload != nil || m.current != old {
		t.Fatalf("reload %v, current pool %d: want the reload failed, the old pool serving", m.reload != nil, m.current.id)
	}
	if !strings.Contains(m.lastErr, "watchdog timeout") {
		t.Errorf("last error %q: want the watchdog timeout", m.lastErr)
	}
	checkInvariants(t, m, s)
}

// TestWorkerEnvWatchdog: WATCHDOG_USEC in microseconds when the watchdog is on, never the
// master's own (masterOnlyEnv); WATCHDOG_PID is set by spawn, the worker's own pid.
func TestWorkerEnvWatchdog(t *testing.T) {
	base := []string{"PATH=/bin", "WATCHDOG_USEC=30000000", "WATCHDOG_PID=1"}
	for _, tt := range []struct {
		d    time.Duration
		want []string
	}{
		{0, nil},
		{1500 * time.Millisecond, []string{"WATCHDOG_USEC=1500000"}},
	} {
		env := workerEnv(base, config.Worker{Watchdog: tt.d}, nil, "/run/n", 1, 1)
		var got []string
		for _, kv := range env {
			if strings.HasPrefix(kv, "WATCHDOG_") {
				got = append(got, kv)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("watchdog %s: %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestWatchdogSaidIsRateLimited: what a worker says of its watchdog is its to send by the
// thousand; the master's log says it once per logEvery.
func TestWatchdogSaidIsRateLimited(t *testing.T) {
	m, _ := reach(t, roleServing, withWatchdog)
	var buf bytes.Buffer
	m.log = slog.New(slog.NewTextHandler(&buf, nil))
	w := m.current.workers[0]
	for i := range 1000 {
		says(m, w, fmt.Sprintf("WATCHDOG_USEC=%d", 1_000_000+i))
		says(m, w, "WATCHDOG_USEC=0", "EXTEND_TIMEOUT_USEC=x")
	}
	if n := strings.Count(buf.String(), "\n"); n > 1 {
		t.Fatalf("%d log lines for 2000 datagrams a worker sent, want 1:\n%.2000s", n, buf.String())
	}
	if w.watchdogInterval() != 1_000_999*time.Microsecond {
		t.Errorf("interval %s, want the last valid one", w.watchdogInterval())
	}
}

// TestWatchdogFailsProbation: a reload's new worker that misses its watchdog while the new
// workers are on trial (reload.soak) fails the reload at once, as an ERRNO= does; its exit
// is then no failure of its own: the old workers serve on.
func TestWatchdogFailsProbation(t *testing.T) {
	m, s, old, _ := startReloadWaited(t, both(soak(5*time.Second), withWatchdog))
	if m.reload == nil || !m.reload.pool.allReady() {
		t.Fatal("the reload's workers are not on trial")
	}
	w := m.reload.pool.workers[0]
	s.fire(w.timer)
	if m.reload != nil || m.current != old {
		t.Fatalf("reload %v, current pool %v: want the reload failed at the miss", m.reload != nil, m.current == old)
	}
	checkInvariants(t, m, s)
	restarts := m.metrics.counts.WorkerRestarts
	m.handle(workerExit{w: w, status: exitStatus{known: true, signal: syscall.SIGTERM}})
	if m.metrics.counts.WorkerRestarts != restarts {
		t.Errorf("the stopped worker of the failed reload was restarted")
	}
	if m.reload != nil || m.current != old {
		t.Fatalf("reload %v, current pool %v: want the reload failed, the old pool serving", m.reload != nil, m.current == old)
	}
	if !strings.Contains(m.lastErr, "worker 1 (pid 1003) watchdog timeout (no WATCHDOG=1 within 10s) during probation") {
		t.Errorf("last error %q: want the watchdog timeout during probation", m.lastErr)
	}
	checkInvariants(t, m, s)
}
