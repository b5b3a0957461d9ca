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
// graceful stop (or commit, on an old master), TERM/INT fast stop, USR1 passed on. What
// each means depends on the master's role; STATES.md has the whole table.

// Signals is the set of signals a master handles; cmd/baton subscribes to them first
// thing, so that none of them kills the process with its default action during start-up.
var Signals = []os.Signal{
	syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT,
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1,
}

func (m *Master) onSignal(s syscall.Signal) {
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
				m.sys.signalGroup(w, syscall.SIGUSR1)
			}
		}
	}
}

// onHUP: a reload, or, on an old master during its upgrade, nginx's "start the old
// workers again"; a commit under way is never undone by it.
func (m *Master) onHUP() {
	switch m.role {
	case roleStopping, roleExited:
		m.log.Warn("HUP ignored: the master is stopping")
	case roleUpgrading, roleSoaking:
		m.rollbackWorkers()
		m.refuseReload("an upgrade is in flight (its workers run; the upgrade goes on)")
	case roleCommitting, roleHandingOver:
		m.refuseReload("the upgrade is being committed; reload the new master once it is in charge")
	case roleRollingBack:
		m.refuseReload("the upgrade is being rolled back")
	default:
		m.startReload(true)
	}
}

// stopWorkers is WINCH: the workers drain and exit, the listeners stay open, the master
// stays. HUP brings workers back.
func (m *Master) stopWorkers() {
	if m.role == roleStopping || m.role == roleHandingOver {
		return
	}
	if m.reload != nil {
		m.failReload("WINCH received")
	}
	if m.current == nil {
		m.log.Info("WINCH: no workers running")
		return
	}
	m.log.Info("WINCH: stopping workers gracefully; listeners stay open")
	m.retireGracefully(m.current)
}

func (m *Master) onQUIT() {
	switch m.role {
	case roleUpgrading, roleSoaking, roleCommitting:
		if m.sd == nil {
			m.requestCommit()
			return
		}
		// Under systemd, QUIT is also the units' KillSignal=: a `systemctl stop` whose
		// ExecStop= could not reach this master. Committing then would hand the service to
		// a new master nobody stops (TimeoutStopSec, SIGKILL). Ask systemd first (off the
		// loop: onUnitState).
		if !m.quitAsk {
			m.quitAsk = true
			m.log.Info("QUIT during an upgrade: asking systemd whether it stops the unit", "new_pid", m.up.pid)
			m.sys.askUnitStopping()
		}
	case roleHandingOver, roleRollingBack:
		m.requestCommit()
	case roleJoining, roleAwaitingCommit:
		m.log.Warn("QUIT before the upgrade was committed: exiting gracefully; the old master takes over (rollback)")
		m.exitMsg = "QUIT before the upgrade was committed"
		m.gracefulStop()
	default:
		m.gracefulStop()
	}
}

// gracefulStop is QUIT without an upgrade in flight, or `baton stop` (ExecStop=) with or
// without one: every worker drains, a new master not committed yet is asked to stop too
// (and this master waits for it), then the master exits.
func (m *Master) gracefulStop() {
	switch m.role {
	case roleStopping, roleExited:
		return
	case roleHandingOver:
		m.log.Warn("stop ignored: this master is handing over to the new master; stop that one", "new_pid", m.up.pid)
		return
	}
	m.become(roleStopping, "graceful stop")
	m.log.Info("graceful stop: workers drain", "event", "stopping")
	m.notifySystemd(sdnotify.Stopping, sdnotify.Status("stopping: workers drain"),
		sdnotify.ExtendTimeoutUsec(drainBound(m.cfg.Worker)+5*time.Second))
	if m.reload != nil {
		m.failReload("stopping")
	}
	for _, p := range m.allPools() {
		m.retireGracefully(p)
	}
	if m.up != nil {
		disarm(m.up.timer)
		disarm(m.up.restore)
		m.up.timer, m.up.restore = nil, nil
		m.stopNewMaster(m.up, syscall.SIGQUIT, m.cfg.Worker.StopTimeout+newMasterGrace)
	}
	m.maybeExit()
}

// fastStop is TERM/INT: every worker gets SIGTERM and fastStopGrace, then SIGKILL; a new
// master of an upgrade in flight is stopped too.
func (m *Master) fastStop() {
	switch {
	case m.role == roleExited || (m.role == roleStopping && m.fast):
		return
	case m.role == roleHandingOver:
		m.log.Warn("stop ignored: this master is handing over to the new master; stop that one", "new_pid", m.up.pid)
		return
	}
	if m.role != roleStopping {
		m.become(roleStopping, "fast stop")
	}
	m.fast = true
	m.log.Info("fast stop", "event", "stopping")
	m.notifySystemd(sdnotify.Stopping, sdnotify.Status("stopping fast"))
	if m.reload != nil {
		m.failReload("stopping")
	}
	for _, p := range m.allPools() {
		m.retire(p, true)
	}
	if m.up != nil {
		disarm(m.up.timer)
		disarm(m.up.restore)
		m.up.timer, m.up.restore = nil, nil
		m.stopNewMaster(m.up, syscall.SIGTERM, newMasterGrace)
	}
	m.maybeExit()
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
	syscall.SIGSEGV: "SEGV", syscall.SIGABRT: "ABRT", syscall.SIGPIPE: "PIPE", syscall.SIGBUS: "BUS",
}
