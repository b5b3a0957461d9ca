//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/sdnotify"
)

// fakeSystem is the master's world without processes: a fake clock and timers, pids from a
// counter, and every effect recorded as a line ("signal 1001 TERM", "notify READY=1").
// Events come from the test, through Master.handle, never from the fake itself.
type fakeSystem struct {
	m          *Master
	clock      time.Time
	armed      []*timer
	nextPID    int
	effects    []string
	lingers    map[int]bool // pid -> its process group has other members
	groupLooks int          // calls of groupsLinger: looks at the process table
	pidfile    map[string]int
	loads      []int        // config loads in flight (reload seq)
	hands      []*upgrade   // hand-overs in flight
	waits      []*parent    // waits for systemd to make a new master main
	asks       int          // questions to systemd whether it stops the unit, unanswered
	failNew    bool         // startNewMaster fails
	logWarn    string       // every worker starts with this logWarning (no journal stream of its own)
	badCfg     bool         // loads return an error
	mainPID    int          // the last MAINPID= sent
	hello      handoffMsg   // the last hello sent to a new master
	sent       []handoffMsg // every message sent over a link, in order
	bugs       []string     // broken rules seen at the moment of an effect
	asked      []*replies   // what control clients were answered (random sequences)
	checks     []checkRun   // health check runs started and not stopped or answered
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{clock: time.Unix(1_000_000, 0), nextPID: 1000, lingers: map[int]bool{}, pidfile: map[string]int{}}
}

func (s *fakeSystem) did(format string, args ...any) {
	s.effects = append(s.effects, fmt.Sprintf(format, args...))
}

func (s *fakeSystem) now() time.Time { return s.clock }

func (s *fakeSystem) arm(t *timer) {
	s.armed = append(s.armed, t)
	s.did("arm %s %s", t.kind, t.d)
	t.stop = func() {
		if i := slices.Index(s.armed, t); i >= 0 {
			s.armed = slices.Delete(s.armed, i, i+1)
		}
	}
}

// fire runs the armed timer t: the clock moves to its end.
func (s *fakeSystem) fire(t *timer) {
	t.stop()
	t.stop = nil
	s.m.handle(timerFired{t})
}

func (s *fakeSystem) armedOf(kind timerKind) []*timer {
	var ts []*timer
	for _, t := range s.armed {
		if t.kind == kind {
			ts = append(ts, t)
		}
	}
	return ts
}

func (s *fakeSystem) startWorkers(ws []*worker) []error {
	errs := make([]error, len(ws))
	for _, w := range ws {
		s.nextPID++
		w.pid = s.nextPID
		w.logWarning = s.logWarn
		s.did("start worker %d pool %d pid %d", w.slot, w.pool.id, w.pid)
	}
	return errs
}

func (s *fakeSystem) signalGroup(w *worker, sig syscall.Signal) {
	if w.state == workerExited {
		s.bugs = append(s.bugs, fmt.Sprintf("signal %s to reaped worker %d", signalName(sig), w.pid))
	}
	s.did("signal %d %s", w.pid, signalName(sig))
}

func (s *fakeSystem) groupsLinger(ws []*worker) []bool {
	s.groupLooks++
	r := make([]bool, len(ws))
	for i, w := range ws {
		r[i] = s.lingers[w.pid]
	}
	return r
}
func (s *fakeSystem) reap(w *worker) { s.did("reap %d", w.pid) }

func (s *fakeSystem) trimMemory() { s.did("trim memory") }

func (s *fakeSystem) startNewMaster(hello handoffMsg, ls []*fdstore.Listener) (*upgrade, error) {
	if s.failNew {
		s.did("start new master failed")
		return nil, fmt.Errorf("exec format error")
	}
	s.nextPID++
	s.hello = hello
	s.did("start new master %d generation %d", s.nextPID, hello.Generation)
	return &upgrade{pid: s.nextPID, link: &fakeLink{s: s, peer: "N"}}, nil
}

func (s *fakeSystem) signalNewMaster(up *upgrade, sig syscall.Signal) {
	if up.handedOver {
		s.bugs = append(s.bugs, fmt.Sprintf("signal %s to new master %d after the hand-over", signalName(sig), up.pid))
	}
	s.did("signal N %s", signalName(sig))
}

func (s *fakeSystem) releaseNewMaster(up *upgrade) { s.did("release N %d", up.pid) }

func (s *fakeSystem) notify(files []*os.File, state ...string) error {
	if !s.m.inCharge() {
		s.bugs = append(s.bugs, "notify while not in charge: "+strings.Join(state, " "))
	}
	s.did("notify %s", strings.Join(state, " "))
	return nil
}

func (s *fakeSystem) handOver(up *upgrade) {
	s.mainPID = up.pid
	s.did("MAINPID=%d", up.pid)
	s.hands = append(s.hands, up)
}

func (s *fakeSystem) waitMain(p *parent) {
	s.did("wait main")
	s.waits = append(s.waits, p)
}

func (s *fakeSystem) askUnitStopping() {
	s.did("ask unit stopping")
	s.asks++
}

func (s *fakeSystem) runCheck(c checkRun) {
	s.did("check %d %s %s", c.seq, strings.Join(c.argv, " "), strings.Join(c.env[len(c.env)-3:], " "))
	if slices.ContainsFunc(s.checks, func(x checkRun) bool { return x.pr == c.pr }) {
		s.bugs = append(s.bugs, "a second run of a check while one runs")
	}
	s.checks = append(s.checks, c)
}

func (s *fakeSystem) stopCheck(pr *probation) {
	s.checks = slices.DeleteFunc(s.checks, func(c checkRun) bool {
		if c.pr == pr {
			s.did("stop check %d", c.seq)
		}
		return c.pr == pr
	})
}

func (s *fakeSystem) environ() []string { return []string{"PATH=/usr/bin:/bin", "WATCHDOG_USEC=1000"} }

// answerChecks ends every check run in flight, passed (err nil) or failed.
func (s *fakeSystem) answerChecks(m *Master, err error) {
	cs := s.checks
	s.checks = nil
	for _, c := range cs {
		m.handle(checkDone{pr: c.pr, seq: c.seq, err: err, out: "out"})
	}
}

func (s *fakeSystem) loadConfig(seq int) {
	s.did("load config %d", seq)
	s.loads = append(s.loads, seq)
}

func (s *fakeSystem) resolve(specs []fdstore.Spec, have []*fdstore.Listener) ([]*fdstore.Listener, []*fdstore.Listener, error) {
	return have, nil, nil
}

func (s *fakeSystem) writePID(path string, pid int) error { s.pidfile[path] = pid; return nil }
func (s *fakeSystem) toOldbin(path string, pid int) error {
	if s.pidfile[path] != pid {
		return fmt.Errorf("pid file %s does not name %d", path, pid)
	}
	delete(s.pidfile, path)
	s.pidfile[path+OldbinSuffix] = pid
	s.did("pidfile to oldbin")
	return nil
}
func (s *fakeSystem) restorePID(path string, pid int) error {
	delete(s.pidfile, path+OldbinSuffix)
	s.pidfile[path] = pid
	s.did("pidfile restored")
	return nil
}
func (s *fakeSystem) removePID(path string, pid int) {
	if s.pidfile[path] == pid {
		delete(s.pidfile, path)
	}
}

// fakeLink records what one master sends the other.
type fakeLink struct {
	s      *fakeSystem
	peer   string
	closed bool
	sent   []handoffMsg
}

func (l *fakeLink) send(msg handoffMsg) error {
	if l.closed {
		return fmt.Errorf("closed")
	}
	l.s.did("send %s %s", l.peer, msg.Type)
	l.s.sent = append(l.s.sent, msg)
	l.sent = append(l.sent, msg)
	return nil
}
func (l *fakeLink) close() { l.closed = true }

const testPIDFile = "/run/baton-test.pid"

// testMaster is a master of generation 1 (or a new master, if joining), on a fake system,
// before its loop starts. under says whether it runs under systemd.
func testMaster(t testing.TB, joining, under bool, edit func(*config.Config)) (*Master, *fakeSystem) {
	cfg := config.Default()
	cfg.Worker.Command = []string{"/bin/true"}
	cfg.Worker.Count = 2
	cfg.PIDFile = testPIDFile
	if edit != nil {
		edit(cfg)
	}
	s := newFakeSystem()
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Master{
		opts: Options{Load: func() (*config.Config, error) { return cfg, nil }, Logger: log},
		sys:  s, log: log, pid: 100, gen: 1, cfg: cfg, role: roleStarting, strict: true,
		events: make(chan event, 64), done: make(chan struct{}),
	}
	if under {
		m.sd = new(sdnotify.Notifier) // never used: the fake system speaks for it
		m.watchdog = 10 * time.Second
		m.opts.WaitMainPID = func(context.Context, int) (int, error) { panic("the fake system waits") }
	}
	if joining {
		m.role, m.gen, m.pid = roleJoining, 2, 200
		m.parent = &parent{link: &fakeLink{s: s, peer: "O"}, oldPID: 100}
		s.pidfile[testPIDFile+OldbinSuffix] = 100
	}
	s.m = m
	s.pidfile[testPIDFile] = m.pid
	return m, s
}

// Helpers that drive a test master as the outside world would.

func (s *fakeSystem) workers(p *pool) []*worker {
	if p == nil {
		return nil
	}
	return p.live()
}

// readyAll makes every starting worker of every pool say READY=1.
func readyAll(m *Master) {
	for _, p := range m.allPools() {
		for _, w := range p.live() {
			if w.state == workerStarting {
				m.handle(notifyEvent{msg: sdnotify.Message{PID: int32(w.pid), Fields: []sdnotify.Field{{Key: "READY", Value: "1"}}}})
			}
		}
	}
}

// exitAll makes every live worker of the retiring pools exit (status 0).
func exitRetiring(m *Master) {
	for _, p := range slices.Clone(m.retiring) {
		for _, w := range p.all() {
			if w.state != workerLingering {
				m.handle(workerExit{w: w, status: exitStatus{known: true}})
			}
		}
	}
}

func hasEffect(s *fakeSystem, from int, sub string) bool {
	for _, e := range s.effects[from:] {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}
