//go:build linux

package supervisor

import (
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
	// called at start and again on every SIGHUP reload.
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
}

type stopKind int

const (
	running  stopKind = iota
	graceful          // QUIT: workers drain, then the master exits
	fast              // TERM/INT: workers get SIGTERM and a short grace, then SIGKILL
)

// fastStopGrace is how long a fast stop waits after SIGTERM before SIGKILL, as nginx does.
const fastStopGrace = time.Second

// Master is one generation of baton's master process. Create it with New, then call Run
// once; all its fields belong to Run's loop.
type Master struct {
	opts    Options
	log     *slog.Logger
	pid     int
	gen     int
	dir     string          // working directory at start
	devNull *os.File        // the workers' stdin; owned
	output  *relay.Relay    // the workers' stdout and stderr (output.go); owned
	nofile  *syscall.Rlimit // the RLIMIT_NOFILE workers get: the one baton started with
	cfg     *config.Config

	listeners []*fdstore.Listener // owned; the set the current workers were given
	notify    *sdnotify.Server

	control       *fdstore.Listener // the control socket; nil when there is none
	controlLn     net.Listener      // accepting on it, while this master is in charge
	reloadWaiters []replyFunc       // control clients waiting for the reload in flight
	stopWaiters   []replyFunc       // control clients waiting for this master to exit

	reloadBySignal bool            // the reload in flight (or the last one) came from SIGHUP
	signalReload   *finishedReload // a SIGHUP reload whose result no client took yet

	sd         *sdnotify.Notifier // systemd's notify socket; nil off systemd
	watchdog   time.Duration      // systemd's watchdog interval; 0 = none
	sentStatus string             // the last STATUS= sent

	poolSeq  int
	current  *pool   // the workers serving now; nil after WINCH
	retiring []*pool // old workers draining
	reload   *reload // a HUP in flight

	stopping stopKind
	up       *upgrade // as the old master: the upgrade in flight
	parent   *parent  // as a new master: the link to the old one, until commit
	everUp   bool     // the first pool has been ready once
	lastErr  string

	wedgeOnUSR1 bool // test switch BATON_TEST_WEDGE=1: USR1 blocks the loop, to prove the watchdog

	sigs     chan os.Signal
	events   chan func()
	done     chan struct{}
	quit     bool
	exitCode int
}

// New prepares a master: it reads the configuration, takes its listeners (from an old
// master during an upgrade, else from socket activation and the config), opens the
// workers' notify socket and writes the pid file. sigs must already be subscribed to
// Signals. On error nothing is left open.
func New(opts Options, sigs chan os.Signal) (_ *Master, err error) {
	m := &Master{
		opts: opts, pid: os.Getpid(), gen: 1,
		sigs: sigs, events: make(chan func(), 64), done: make(chan struct{}),
	}
	m.log = opts.Logger.With("generation", m.gen, "pid", m.pid)
	m.wedgeOnUSR1 = os.Getenv("BATON_TEST_WEDGE") == "1"
	if m.dir, err = os.Getwd(); err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	var inherited []*fdstore.Listener
	defer func() {
		if err != nil {
			closeAll(inherited)
			closeAll(m.listeners)
			m.control.Close()
			if m.notify != nil {
				m.notify.Close()
			}
			if m.parent != nil {
				m.parent.conn.Close()
			}
			m.devNull.Close()
			m.output.Close(0)
		}
	}()
	if m.devNull, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if err = m.openOutput(); err != nil {
		return nil, err
	}
	if m.sd, err = openNotifier(); err != nil {
		m.log.Warn("cannot talk to systemd", "err", err)
	}
	if fd := os.Getenv(upgradeFDEnv); fd != "" {
		os.Unsetenv(upgradeFDEnv)
		var hello handoffMsg
		m.parent, hello, inherited, err = joinOldMaster(fd)
		if err != nil {
			return nil, err
		}
		m.gen = hello.Generation
		m.watchdog = time.Duration(hello.WatchdogUsec) * time.Microsecond
		m.nofile = hello.Nofile
		m.log = opts.Logger.With("generation", m.gen, "pid", m.pid)
		m.log.Info("new master started by upgrade", "old_pid", hello.OldPID, "listeners", len(inherited))
	} else {
		inherited, err = fdstore.Activation(true)
		if err != nil {
			return nil, fmt.Errorf("socket activation: %w", err)
		}
		fromStore(inherited)
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
	if m.cfg, err = opts.Load(); err != nil {
		return nil, err
	}
	if err = Precheck(m.cfg); err != nil {
		return nil, err
	}
	if m.control, inherited, err = openControl(m.cfg.ControlPath(), inherited); err != nil {
		return nil, err
	}
	use, unused, err := fdstore.Resolve(specs(m.cfg), inherited)
	if err != nil {
		return nil, err
	}
	inherited = nil
	m.unstoreListeners(unused)
	closeAll(unused)
	m.listeners = use
	if m.notify, err = sdnotify.Listen(""); err != nil {
		return nil, fmt.Errorf("worker notify socket: %w", err)
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
	if m.isMain() {
		m.serveControl()
	}
	if m.watchdog > 0 {
		go m.watchdogLoop(m.watchdog)
	}
	if err := m.startCurrent(m.cfg); err != nil {
		m.log.Error("cannot start workers", "err", err)
		if m.parent != nil {
			m.parent.send(handoffMsg{Type: "error", Reason: err.Error()})
		}
		return 1
	}
	for !m.quit {
		select {
		case s := <-m.sigs:
			m.onSignal(s)
		case fn := <-m.events:
			fn()
		}
		m.progress()
		m.updateStatus()
	}
	return m.exitCode
}

// post hands fn to the master loop. Safe from any goroutine; dropped once Run returned.
func (m *Master) post(fn func()) {
	select {
	case m.events <- fn:
	case <-m.done:
	}
}

func (m *Master) cleanup() {
	close(m.done)
	for _, p := range m.allPools() {
		for _, w := range p.live() {
			w.signal(syscall.SIGKILL)
		}
		p.cancelRestarts()
	}
	m.notify.Close()
	m.sd.Close()
	closeAll(m.listeners)
	m.stopControl()
	m.control.Close()
	m.devNull.Close()
	m.answerReload(errors.New("the master exited"))
	for _, reply := range m.stopWaiters {
		reply(ControlReply{OK: true, Message: fmt.Sprintf("master pid %d stopped", m.pid)})
	}
	if m.parent != nil {
		m.parent.conn.Close()
	}
	if m.cfg.PIDFile != "" {
		if err := RemovePIDFile(m.cfg.PIDFile, m.pid); err != nil {
			m.log.Warn("cannot remove pid file", "err", err)
		}
		RemovePIDFile(m.cfg.PIDFile+OldbinSuffix, m.pid)
	}
	m.closeOutput()
	m.log.Info("master exited", "code", m.exitCode)
}

// progress is run after every event: it moves every piece of state that waits on others.
func (m *Master) progress() {
	if r := m.reload; r != nil && r.pool.allReady() {
		m.commitReload()
	}
	if p := m.current; p != nil && !p.ready && p.allReady() {
		p.ready = true
		m.onReady()
	}
	for i := 0; i < len(m.retiring); {
		if m.retiring[i].empty() {
			m.retiring = append(m.retiring[:i], m.retiring[i+1:]...)
			continue
		}
		i++
	}
	if m.up != nil && m.up.state == upCommitting && m.current == nil && m.reload == nil && len(m.retiring) == 0 {
		m.finishCommit()
	}
	if m.stopping != running && m.current == nil && m.reload == nil && len(m.retiring) == 0 && m.up == nil {
		m.quit = true
	}
}

// onReady runs when the current pool has every worker ready for the first time.
func (m *Master) onReady() {
	if !m.everUp {
		m.everUp = true
		m.log.Info("workers ready", "workers", len(m.current.workers), "event", "ready")
		m.notifySystemd(sdnotify.Ready, sdnotify.Status(m.statusLine()))
		if m.parent != nil {
			m.parent.ready(m)
		}
		return
	}
	m.log.Info("workers ready", "workers", len(m.current.workers))
}

func (m *Master) allPools() []*pool {
	var ps []*pool
	if m.current != nil {
		ps = append(ps, m.current)
	}
	if m.reload != nil {
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
		if err != nil {
			continue
		}
		m.post(func() { m.onNotify(msg) })
	}
}

// onNotify takes a datagram from the workers' notify socket. Only a live worker of this
// master may speak, and only for itself: the kernel-checked sender pid must be one.
func (m *Master) onNotify(msg sdnotify.Message) {
	var w *worker
	for _, p := range m.allPools() {
		if w = p.byPID(int(msg.PID)); w != nil {
			break
		}
	}
	if w == nil {
		m.log.Debug("notify message from a process that is not a worker dropped", "sender", msg.PID)
		return
	}
	if s, ok := msg.Get("STATUS"); ok {
		w.status = s
	}
	if v, ok := msg.Get("READY"); ok && v == "1" && w.state == workerStarting {
		m.markReady(w)
	}
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
