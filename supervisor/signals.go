//go:build linux

package supervisor

import (
	"math"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/sdnotify"
)

// The master's signals, nginx's: HUP reload, USR2 upgrade, WINCH stop the workers, QUIT
// graceful stop (or commit, on an old master), TERM/INT fast stop, USR1 passed on.

// Signals is the set of signals a master handles; cmd/baton subscribes to them first
// thing, so that none of them kills the process with its default action during start-up.
var Signals = []os.Signal{
	syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT,
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1,
}

func (m *Master) onSignal(s os.Signal) {
	m.log.Info("signal received", "signal", signalName(s))
	switch s {
	case syscall.SIGHUP:
		m.onHUP()
	case syscall.SIGUSR2:
		m.startUpgrade()
	case syscall.SIGWINCH:
		m.stopWorkers()
	case syscall.SIGQUIT:
		m.onQUIT()
	case syscall.SIGTERM, syscall.SIGINT:
		m.fastStop()
	case syscall.SIGUSR1:
		if m.wedgeOnUSR1 {
			m.log.Warn("BATON_TEST_WEDGE: the master loop blocks for good (test switch)")
			time.Sleep(math.MaxInt64)
		}
		for _, p := range m.allPools() {
			for _, w := range p.live() {
				w.signal(syscall.SIGUSR1)
			}
		}
	}
}

func (m *Master) onHUP() {
	switch {
	case m.stopping != running:
		m.log.Warn("HUP ignored: the master is stopping")
	case m.up != nil:
		m.rollbackWorkers()
	default:
		m.startReload(true)
	}
}

// stopWorkers is WINCH: the workers drain and exit, the listeners stay open, the master
// stays. HUP brings workers back.
func (m *Master) stopWorkers() {
	if m.reload != nil {
		m.failReload("WINCH received")
	}
	if m.current == nil {
		m.log.Info("WINCH: no workers running")
		return
	}
	m.log.Info("WINCH: stopping workers gracefully; listeners stay open")
	m.retire(m.current, false)
	m.current = nil
}

func (m *Master) onQUIT() {
	if m.up != nil {
		m.requestCommit()
		return
	}
	if m.parent != nil {
		m.log.Warn("QUIT before the upgrade was committed: exiting gracefully; the old master takes over (rollback)")
	}
	m.gracefulStop()
}

// gracefulStop is QUIT without an upgrade in flight, or `baton stop` (ExecStop=) with or
// without one: every worker drains, a new master not committed yet is asked to stop too
// (and this master waits for it), then the master exits.
func (m *Master) gracefulStop() {
	if m.stopping != running {
		return
	}
	m.stopping = graceful
	m.log.Info("graceful stop: workers drain", "event", "stopping")
	m.notifySystemd(sdnotify.Stopping, sdnotify.Status("stopping: workers drain"),
		sdnotify.ExtendTimeoutUsec(m.cfg.Worker.StopTimeout+5*time.Second))
	if m.reload != nil {
		m.failReload("stopping")
	}
	for _, p := range m.allPools() {
		m.retire(p, false)
	}
	m.current = nil
	if m.up != nil {
		m.up.signal(syscall.SIGQUIT)
		m.up.stopTimer()
		up := m.up
		grace := m.cfg.Worker.StopTimeout + 5*time.Second
		up.timer = time.AfterFunc(grace, func() { up.signal(syscall.SIGKILL) })
	}
}

// fastStop is TERM/INT: every worker gets SIGTERM and fastStopGrace, then SIGKILL; a new
// master of an upgrade in flight is stopped too.
func (m *Master) fastStop() {
	if m.stopping == fast {
		return
	}
	m.stopping = fast
	m.log.Info("fast stop", "event", "stopping")
	m.notifySystemd(sdnotify.Stopping, sdnotify.Status("stopping fast"))
	if m.reload != nil {
		m.failReload("stopping")
	}
	for _, p := range m.allPools() {
		m.retire(p, true)
	}
	m.current = nil
	if m.up != nil {
		m.up.stop()
	}
}

func signalName(s os.Signal) string {
	if sig, ok := s.(syscall.Signal); ok {
		if n, ok := signalNames[sig]; ok {
			return n
		}
		return "signal " + strconv.Itoa(int(sig))
	}
	return s.String()
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "HUP", syscall.SIGINT: "INT", syscall.SIGQUIT: "QUIT", syscall.SIGKILL: "KILL",
	syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGTERM: "TERM", syscall.SIGWINCH: "WINCH",
}
