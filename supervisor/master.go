//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/internal/relay"
	"github.com/baton-supervisor/baton/internal/spawn"
	"github.com/baton-supervisor/baton/sdnotify"
)

// Options wire a Master to its command line. cmd/baton fills them; nothing else does.
type Options struct {
	// Load reads the configuration: the file and the command-line flags over it. It is
	// called at start, and again, off the master loop, on every reload.
	Load func() (*config.Config, error)
	// Exe is the path a new master is started from on SIGUSR2 (see Executable).
	Exe string
	// Args are the new master's arguments, without argv[0]: the same as this master's.
	Args []string
	// Logger receives every log line; the master adds "generation" and "pid".
	Logger *slog.Logger
	// Version is logged when the master starts.
	Version string
	// SystemdVersion tells the running systemd's version (0: unknown). Optional; it must
	// be safe to call from any goroutine and cheap after the first call.
	SystemdVersion func() int
	// SystemdMainPID asks systemd which pid it takes for this service's main process (0,
	// err: it cannot tell). Optional; called off the loop, only when a hand-over could not
	// be confirmed.
	SystemdMainPID func(pid int) (int, error)
	// WaitMainPID waits until systemd names pid the main process of its unit, or ctx ends;
	// it returns the last main pid seen. Optional; called off the loop, by a new master
	// whose old master died before the commit (the units' PIDFile= names it: systemd makes
	// it main when it reaps the old master).
	WaitMainPID func(ctx context.Context, pid int) (int, error)
	// UnitStopping asks systemd whether it is stopping the unit pid runs in (its
	// ActiveState is "deactivating"). Optional; called off the loop, by an old master that
	// gets QUIT during its upgrade under systemd: that QUIT is the unit's KillSignal= (a
	// stop whose ExecStop= could not reach the master) rather than an operator's commit.
	UnitStopping func(ctx context.Context, pid int) (bool, error)
}

// fastStopGrace is how long a fast stop waits after SIGTERM before SIGKILL, as nginx does.
const fastStopGrace = time.Second

// newMasterGrace is how long an old master waits for a new master it asked to exit (TERM
// at the upgrade timeout, or a fast stop) before it sends SIGKILL: the new master's own
// fast stop (fastStopGrace) must have run first, so that its workers are stopped by their
// master rather than left to PDEATHSIG.
const newMasterGrace = 5 * fastStopGrace

// Master is one generation of baton's master process. Create it with New, then call Run
// once; all its fields belong to Run's loop.
type Master struct {
	opts    Options
	sys     system
	log     *slog.Logger
	pid     int
	gen     int
	devNull *os.File        // the workers' stdin; owned
	output  *relay.Relay    // the workers' stdout and stderr (output.go); owned
	nofile  *syscall.Rlimit // the RLIMIT_NOFILE workers get: the one baton started with
	cfg     *config.Config

	role      role
	fast      bool // roleStopping: a fast stop (TERM, INT) rather than a graceful one
	readyOnce bool // the first pool has been ready once
	strict    bool // tests: a transition not drawn panics

	listeners []*fdstore.Listener // owned; the set the current workers were given
	dropped   []*fdstore.Listener // new master: inherited listeners its config dropped, to remove from the FD store once in charge
	notify    *notifySock         // the workers' notify socket (notifydir.go)

	controls      []*ctlSock    // the control sockets (control.go)
	controlLive   bool          // this master accepts on them (it is in charge)
	reloadWaiters []replyFunc   // control clients waiting for the reload in flight
	stopWaiters   []replyFunc   // control clients waiting for this master to exit
	controlSlots  chan struct{} // one token per control connection being served

	metrics masterMetrics // counts, and the [metrics] endpoint (metrics.go)

	signalReload *finishedReload // a SIGHUP reload whose result no client took yet

	sd         *sdnotify.Notifier // systemd's notify socket; nil off systemd
	watchdog   time.Duration      // systemd's watchdog interval; 0 = none
	wdTimer    *timer
	sentStatus string // the last STATUS= sent

	poolSeq  int
	current  *pool   // the workers serving now; nil after WINCH
	retiring []*pool // old workers draining
	benched  *pool   // the pool last retired from current: reinstate may put it back
	reload   *reload // a reload in flight
	reloads  int     // reloads started, to tell a late config result from the current one

	up     *upgrade // as the old master: the upgrade in flight
	parent *parent  // as a new master: the link to the old one, until commit
	// probation: as a new master, its first pool on trial, from ready until its old
	// master commits (probation.go); a reload's trial is the reload's own.
	probation *probation
	uproll    *upRoll // as a new master: its rolling start, until its last batch started (rolling.go)
	exitMsg   string  // as a new master not committed: why it exits, for the old master
	quitAsk   bool    // as the old master: QUIT arrived, systemd is being asked whether it stops the unit

	lastErr     string
	lastErrSlot int // lastErr is slot's crash loop: its worker ready again clears it (0: not one)

	startedAt time.Time                    // when this master started (New)
	history   []HistoryEntry               // the last lifecycle events, oldest first (status.go)
	origins   map[*fdstore.Listener]string // where an inherited listener came from, for status
	progress  progressState                // new master: what was last sent to the old one

	rate rateLimits

	wedgeOnUSR1 bool // test switch BATON_TEST_WEDGE=1: USR1 blocks the loop, to prove the watchdog

	sigs     chan os.Signal
	events   chan event
	done     chan struct{}
	exitCode int
}

// readOnlyHint follows an error of New that is EROFS: a control socket, unix listener or
// pid file outside what the shipped units let baton write (ProtectSystem=strict).
const readOnlyHint = "read-only here: under baton's units only /run/baton/<instance> and /tmp are writable; " +
	"add the directory to ReadWritePaths= in a drop-in (units/README.md, Hardening)"

// New prepares a master: it reads the configuration, takes its listeners (from an old
// master during an upgrade, else from socket activation and the config), opens the
// workers' notify socket and writes the pid file. sigs must already be subscribed to
// Signals. On error nothing is left open; a new master tells its old master why first.
func New(opts Options, sigs chan os.Signal) (_ *Master, err error) {
	m := &Master{
		opts: opts, pid: os.Getpid(), gen: 1,
		sigs: sigs, events: make(chan event, 64), done: make(chan struct{}),
		controlSlots: make(chan struct{}, maxControlConns),
		startedAt:    time.Now(), origins: map[*fdstore.Listener]string{},
	}
	m.log = opts.Logger.With("generation", m.gen, "pid", m.pid)
	m.wedgeOnUSR1 = os.Getenv("BATON_TEST_WEDGE") == "1"
	osys := &osSystem{m: m, exe: opts.Exe, args: opts.Args}
	m.sys = osys
	var inherited []*fdstore.Listener
	defer func() {
		if errors.Is(err, syscall.EROFS) {
			err = fmt.Errorf("%w (%s)", err, readOnlyHint)
		}
		if err != nil {
			if m.parent != nil {
				m.parent.link.send(handoffMsg{Type: "error", Reason: err.Error()})
				m.parent.link.close()
			}
			closeAll(inherited)
			closeAll(m.listeners)
			closeAll(m.dropped)
			closeControls(m.controls)
			m.metrics.sock.Close()
			if m.notify != nil {
				m.notify.Close()
			}
			m.devNull.Close()
			osys.close()
			m.output.Close(0)
		}
	}()
	if err = osys.open(); err != nil {
		return nil, err
	}
	if m.devNull, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if err = m.openOutput(); err != nil {
		return nil, err
	}
	if m.sd, err = openNotifier(); err != nil {
		m.log.Warn("cannot talk to systemd", "err", err)
	}
	m.role = roleStarting
	if fd := os.Getenv(upgradeFDEnv); fd != "" {
		os.Unsetenv(upgradeFDEnv)
		var hello handoffMsg
		m.parent, hello, inherited, err = joinOldMaster(fd)
		if err != nil {
			return nil, err
		}
		m.role = roleJoining
		m.gen = hello.Generation
		m.watchdog = time.Duration(hello.WatchdogUsec) * time.Microsecond
		m.nofile = hello.Nofile
		m.log = opts.Logger.With("generation", m.gen, "pid", m.pid)
		m.log.Info("new master started by upgrade", "old_pid", hello.OldPID, "listeners", len(inherited))
		m.history = validHistory(hello.History)
		for _, l := range inherited {
			m.origins[l] = "handed over"
		}
	} else {
		inherited, err = fdstore.Activation(true)
		if err != nil {
			return nil, fmt.Errorf("socket activation: %w", err)
		}
		for _, l := range inherited {
			m.origins[l] = fdstore.Activated.String()
		}
		for _, l := range fromStore(inherited) {
			m.origins[l] = "fdstore"
		}
		if m.watchdog, err = sdnotify.WatchdogInterval(); err != nil {
			m.log.Warn("watchdog disabled", "err", err)
		}
	}
	if m.nofile == nil {
		// Asked once per service start; a new master gets it from the old one.
		if lim, err := spawn.OriginalNofile(); err != nil {
			m.log.Warn("workers keep the raised RLIMIT_NOFILE", "err", err)
		} else {
			m.nofile = &lim
		}
	}
	m.log.Info("master starting", "version", opts.Version, "exe", opts.Exe)
	var ss []fdstore.Spec
	if m.cfg, ss, err = loadConfig(opts.Load); err != nil {
		return nil, err
	}
	if m.controls, inherited, err = openControl(controlPaths(m.cfg), inherited); err != nil {
		return nil, err
	}
	if inherited, err = m.takeMetrics(m.cfg.Metrics, inherited); err != nil {
		return nil, err
	}
	use, unused, err := fdstore.Resolve(ss, inherited)
	if err != nil {
		return nil, err
	}
	inherited = nil
	m.listeners = use
	if m.parent != nil {
		// Still the old master's, in the FD store too: removed once this master is in
		// charge (a rollback keeps them).
		m.dropped = unused
	} else {
		m.unstoreListeners(unused)
		closeAll(unused)
	}
	if m.notify, err = openNotify(os.TempDir()); err != nil {
		return nil, err
	}
	if m.cfg.PIDFile != "" {
		if err = WritePIDFile(m.cfg.PIDFile, m.pid); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Run starts the workers and runs the master loop until the master stops, and returns the
// process exit code. It closes everything it owns before it returns.
func (m *Master) Run() int {
	defer m.cleanup()
	go m.receiveNotify()
	if m.parent != nil {
		go m.parent.read(m)
	}
	for _, l := range m.listeners {
		m.log.Info("listening", "name", l.Name, "network", l.Network, "address", l.Addr, "source", l.Source.String())
	}
	m.storeListeners(m.listeners)
	if m.sd != nil && m.opts.SystemdVersion != nil {
		// Asked now, off the upgrade's critical path; handOver reads the cached answer.
		go m.opts.SystemdVersion()
	}
	if m.inCharge() {
		m.serveControl()
	}
	m.start()
	for m.role != roleExited {
		select {
		case s := <-m.sigs:
			if sig, ok := s.(syscall.Signal); ok {
				m.handle(sigEvent{sig})
			}
		case ev := <-m.events:
			m.handle(ev)
		}
	}
	return m.exitCode
}

// start is the first thing the loop does: the first pool, and the watchdog.
func (m *Master) start() {
	if m.watchdog > 0 {
		m.wdTimer = m.arm(&timer{kind: tWatchdog, d: m.watchdog / 2})
	}
	start := func() error { return m.startCurrent(m.cfg) }
	if m.rollsUp() {
		start = m.startRollingUp
	}
	if err := start(); err != nil {
		m.log.Error("cannot start workers", "err", err)
		m.exitCode = 1
		if m.parent != nil {
			m.exitMsg = "cannot start workers: " + err.Error()
		}
		m.become(roleExited, "no workers")
		return
	}
	m.updateStatus()
	// A new master tells its old master about its workers at once: if none of them ever
	// speaks (never ready), no event would make it, and the old master's timeout would
	// say it never reported its progress.
	m.sendProgress()
}

// post hands ev to the master loop. Safe from any goroutine; dropped once Run returned.
func (m *Master) post(ev event) {
	select {
	case m.events <- ev:
	case <-m.done:
	}
}

// handle is the master's transition function: every event goes through it, and it alone
// decides, from the master's role, what the event means.
func (m *Master) handle(ev event) {
	switch ev := ev.(type) {
	case sigEvent:
		m.onSignal(ev.sig)
	case workerExit:
		m.onWorkerExit(ev.w, ev.status)
	case notifyEvent:
		m.onNotify(ev)
	case timerFired:
		m.onTimer(ev.t)
	case controlEvent:
		m.onControl(ev.req, ev.reply, ev.stamp)
	case refusedControl:
		m.rate.controlRefused.log(m, "control connection refused", "err", ev.err)
	case newMasterMsg:
		m.onNewMasterMsg(ev.up, ev.msg)
	case newMasterExited:
		m.onNewMasterExit(ev.up, ev.how)
	case oldMasterMsg:
		m.onOldMasterMsg(ev.p, ev.msg)
	case oldMasterGone:
		m.onOldMasterGone(ev.p)
	case becameMain:
		m.onBecameMain(ev)
	case configLoaded:
		m.onConfigLoaded(ev)
	case handOverDone:
		m.onHandOverDone(ev)
	case unitState:
		m.onUnitState(ev)
	case checkDone:
		m.onCheckDone(ev)
	}
	if m.role != roleExited {
		m.updateStatus()
		m.sendProgress()
		m.publishMetrics()
	}
}

func (m *Master) onTimer(t *timer) {
	switch t.kind {
	case tWorkerStart:
		m.onStartTimeout(t.w, t)
	case tWorkerKill:
		m.onKillTimeout(t.w, t)
	case tWorkerLinger:
		m.onLingerCheck(t.w, t)
	case tRestart:
		m.onRestart(t.p, t.slot, t)
	case tUpgradeReady:
		m.onUpgradeTimeout(t.up, t)
	case tSoak:
		m.onSoakEnd(t.up, t)
	case tNewMasterKill:
		m.onNewMasterKill(t.up, t)
	case tReloadSoak:
		m.onReloadSoak(t.pr, t)
	case tCheck:
		m.onCheckTimer(t.pr, t)
	case tRollBack:
		m.onRollBackTimeout(t)
	case tRestore:
		m.onRestoreTimeout(t.up, t)
	case tSpread:
		m.onSpread(t.p, t)
	case tProgress:
		if t == m.progress.timer {
			m.progress.timer = nil
			m.sendProgress()
		}
	case tWorkerWatchdog:
		m.onWatchdogTimeout(t.w, t)
	case tWatchdog:
		if t == m.wdTimer {
			m.wdTimer = m.arm(&timer{kind: tWatchdog, d: m.watchdog / 2})
			m.watchdogPing()
		}
	}
}

// arm starts t and returns it.
func (m *Master) arm(t *timer) *timer {
	t.at = m.sys.now()
	m.sys.arm(t)
	return t
}

// disarm stops t if it is armed. Safe on nil.
func disarm(t *timer) {
	if t != nil && t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

func (m *Master) cleanup() {
	// Answered first, written by their connections' goroutines before the process exits.
	m.answerReload(nil, errors.New("the master exited"))
	for _, reply := range m.stopWaiters {
		reply(ControlReply{OK: true, Message: fmt.Sprintf("master pid %d stopped", m.pid)})
	}
	if m.up != nil {
		m.up.answer(errors.New("the old master exited"))
	}
	close(m.done)
	for _, p := range m.allPools() {
		for _, w := range p.all() {
			if w.state != workerExited {
				m.sys.signalGroup(w, syscall.SIGKILL)
				m.sys.reap(w)
				w.state = workerExited
			}
			disarm(w.timer)
		}
		p.cancelRestarts()
	}
	disarm(m.wdTimer)
	disarm(m.progress.timer)
	m.endProbation(m.probation)
	if m.reload != nil {
		m.endProbation(m.reload.probation)
	}
	if m.parent != nil {
		msg := m.exitMsg
		if msg == "" {
			msg = "exited before the upgrade was committed"
		}
		m.parent.link.send(handoffMsg{Type: "exit", Code: m.exitCode, Reason: msg})
		m.parent.link.close()
	}
	if m.notify != nil {
		m.notify.Close()
	}
	m.sd.Close()
	closeAll(m.listeners)
	closeAll(m.dropped)
	m.stopControl()
	closeControls(m.controls)
	m.metrics.sock.Close()
	m.devNull.Close()
	if m.cfg.PIDFile != "" {
		m.sys.removePID(m.cfg.PIDFile, m.pid)
		m.sys.removePID(m.cfg.PIDFile+OldbinSuffix, m.pid)
	}
	if m.up != nil {
		m.up.link.close()
	}
	if osys, ok := m.sys.(*osSystem); ok {
		osys.close()
	}
	m.flushControl()
	m.flushMetrics()
	m.closeOutput()
	m.log.Info("master exited", "code", m.exitCode)
}

// inCharge reports whether this master is the service's main process now.
func (m *Master) inCharge() bool { return m.parent == nil && m.role.inCharge() }

func (m *Master) allPools() []*pool {
	var ps []*pool
	if m.current != nil {
		ps = append(ps, m.current)
	}
	if m.reload != nil && m.reload.pool != nil {
		ps = append(ps, m.reload.pool)
	}
	return append(ps, m.retiring...)
}

func (m *Master) receiveNotify() {
	for {
		msg, err := m.notify.Receive()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		m.post(notifyEvent{msg: msg, err: err})
	}
}

// onNotify takes a datagram from the workers' notify socket. Only a live worker of this
// master may speak, and only for itself: the kernel-checked sender pid must be one.
func (m *Master) onNotify(ev notifyEvent) {
	if ev.err != nil {
		m.rate.notifyBad.log(m, "malformed notify datagram dropped", "err", ev.err)
		return
	}
	var w *worker
	for _, p := range m.allPools() {
		if w = p.byPID(int(ev.msg.PID)); w != nil {
			break
		}
	}
	if w == nil {
		m.rate.notifyStranger.log(m, "notify message from a process that is not a worker dropped", "sender", ev.msg.PID)
		return
	}
	if s, ok := ev.msg.Get("STATUS"); ok {
		w.status = s
	}
	if v, ok := ev.msg.Get("READY"); ok && v == "1" && w.state == workerStarting {
		m.markReady(w)
	}
	if v, ok := ev.msg.Get("ERRNO"); ok {
		m.onWorkerErrno(w, v)
	}
	m.notifyWatchdog(w, ev.msg)
}

func closeAll(ls []*fdstore.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func specs(c *config.Config) []fdstore.Spec {
	ss := make([]fdstore.Spec, len(c.Listeners))
	for i, l := range c.Listeners {
		ss[i] = fdstore.Spec{Name: l.Name, Network: l.Network, Address: l.Address, Mode: l.Mode, Owner: l.Owner, Group: l.Group, Backlog: l.Backlog}
	}
	return ss
}
