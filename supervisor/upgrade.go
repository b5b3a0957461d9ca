//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/fdstore"
)

type upState int

const (
	upStarting   upState = iota // N started, not ready yet
	upReady                     // N ready; soaking (auto) or waiting for QUIT (manual)
	upCommitting                // O's workers draining before the handover
	upHandedOver                // commit sent; O exits
)

func (s upState) String() string {
	return [...]string{"starting", "ready", "committing", "handed-over"}[s]
}

// upgrade is the old master's view of the upgrade in flight.
type upgrade struct {
	pid     int
	pidfd   int
	conn    *net.UnixConn
	state   upState
	timer   *time.Timer // ready timeout, then soak
	quit    bool        // QUIT arrived before N was ready: commit once it is
	reason  string      // why it failed, as N or this master saw it
	started time.Time

	readDone chan struct{} // closed when read has returned

	waiters         []replyFunc // control clients waiting for the commit
	rollbackWaiters []replyFunc // control clients waiting for a rollback
}

// startUpgrade is USR2: start the new binary detached, hand it the listeners, and wait for
// it to be ready. Anything that fails leaves this master in charge, as it was; the error
// says why (it has been logged).
func (m *Master) startUpgrade() error {
	refuse := func(why string, args ...any) error {
		m.log.Warn("USR2 ignored: "+why, args...)
		return errors.New("upgrade refused: " + why)
	}
	switch {
	case m.stopping != running:
		return refuse("the master is stopping")
	case m.up != nil:
		return refuse("an upgrade is already in flight", "new_pid", m.up.pid, "state", m.up.state.String())
	case m.parent != nil:
		return refuse("this master's own upgrade is not committed yet")
	case m.reload != nil:
		return refuse("a reload is in flight")
	}
	pidfile := m.cfg.PIDFile
	if pidfile != "" {
		if err := RenameToOldbin(pidfile, m.pid); err != nil {
			m.log.Warn("upgrade: pid file not moved aside", "err", err)
		}
	}
	up, err := m.spawnNewMaster()
	if err != nil {
		m.lastErr = "upgrade failed: " + err.Error()
		m.log.Error("upgrade failed; this master stays in charge", "err", err, "event", "upgrade-failed")
		m.restorePIDFile()
		return fmt.Errorf("upgrade failed: %w", err)
	}
	m.up = up
	m.log.Info("upgrade started", "new_pid", up.pid, "exe", m.opts.Exe, "timeout", m.cfg.Upgrade.Timeout, "event", "upgrade-started")
	go up.watch(m)
	go up.read(m)
	up.timer = time.AfterFunc(m.cfg.Upgrade.Timeout, func() {
		m.post(func() { m.onUpgradeTimeout(up) })
	})
	return nil
}

// spawnNewMaster starts N with CLONE_PARENT, so that it is the child of whatever started
// this master (systemd, a subreaper), and takes a pidfd of it. The hello message and the
// listeners are queued on the socketpair before N runs.
func (m *Master) spawnNewMaster() (*upgrade, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "handoff")
	theirs := os.NewFile(uintptr(fds[1]), "handoff-child")
	defer theirs.Close()
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, err
	}
	conn := c.(*net.UnixConn)
	hello := handoffMsg{Type: "hello", Generation: m.gen + 1, OldPID: m.pid, Config: m.cfg.Path,
		WatchdogUsec: uint64(m.watchdog.Microseconds()), Nofile: m.nofile}
	if err := sendMsg(conn, hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handoff: %w", err)
	}
	conn.SetWriteDeadline(time.Now().Add(handoffTimeout))
	handed := m.listeners
	if m.control != nil {
		handed = append(slices.Clip(handed), m.control)
	}
	if err := fdstore.Send(conn, handed); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handoff: %w", err)
	}
	env := append(dropEnv(os.Environ(), "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", upgradeFDEnv), upgradeFDEnv+"=3")
	argv := append([]string{m.opts.Exe}, m.opts.Args...)
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   m.dir,
		Env:   env,
		Files: []uintptr{0, 1, 2, theirs.Fd()},
		Sys:   &syscall.SysProcAttr{Cloneflags: syscall.CLONE_PARENT, PidFD: &pidfd},
	}
	var pid int
	fork := func() (err error) {
		pid, err = syscall.ForkExec(m.opts.Exe, argv, attr)
		return err
	}
	err = withForkSignalsBlocked(fork)
	if errors.Is(err, syscall.EINVAL) {
		// CLONE_PARENT is refused to the init of a pid namespace: there, a child is as
		// detached as it gets.
		attr.Sys.Cloneflags = 0
		err = withForkSignalsBlocked(fork)
	}
	if err != nil {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		conn.Close()
		return nil, fmt.Errorf("start %s: %w", m.opts.Exe, err)
	}
	return &upgrade{pid: pid, pidfd: pidfd, conn: conn, started: time.Now(), readDone: make(chan struct{})}, nil
}

// watch waits for N to exit, on its pidfd. It lets the reader finish first (N's socket
// reaches end-of-file when N exits), so that an error N sent just before it exited is
// known when the exit is handled.
func (up *upgrade) watch(m *Master) {
	fds := []unix.PollFd{{Fd: int32(up.pidfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err != unix.EINTR {
			break
		}
	}
	select {
	case <-up.readDone:
	case <-time.After(time.Second): // a child of N holds the socket open
	}
	m.post(func() { m.onNewMasterExit(up) })
}

// read takes N's ready and error messages.
func (up *upgrade) read(m *Master) {
	defer close(up.readDone)
	for {
		msg, err := readMsg(up.conn)
		if err != nil {
			return
		}
		switch msg.Type {
		case "ready":
			m.post(func() { m.onNewMasterReady(up) })
		case "error":
			m.post(func() {
				up.reason = msg.Reason
				m.log.Error("new master reports failure", "new_pid", up.pid, "reason", msg.Reason)
			})
		}
	}
}

// signal sends sig to N through its pidfd: no pid-reuse race.
func (up *upgrade) signal(sig syscall.Signal) {
	unix.PidfdSendSignal(up.pidfd, sig, nil, 0)
}

// stop is a fast stop of the whole service reaching N: TERM, then KILL after a grace.
func (up *upgrade) stop() {
	up.signal(syscall.SIGTERM)
	up.stopTimer()
	up.timer = time.AfterFunc(5*fastStopGrace, func() { up.signal(syscall.SIGKILL) })
}

func (up *upgrade) stopTimer() {
	if up.timer != nil {
		up.timer.Stop()
		up.timer = nil
	}
}

func (m *Master) onUpgradeTimeout(up *upgrade) {
	if m.up != up || up.state != upStarting {
		return
	}
	up.reason = fmt.Sprintf("not ready within %s", m.cfg.Upgrade.Timeout)
	m.log.Error("new master not ready in time; killing it", "new_pid", up.pid, "timeout", m.cfg.Upgrade.Timeout)
	up.signal(syscall.SIGKILL)
}

func (m *Master) onNewMasterReady(up *upgrade) {
	if m.up != up || up.state != upStarting {
		return
	}
	up.state = upReady
	up.stopTimer()
	m.log.Info("new master ready", "new_pid", up.pid, "took", time.Since(up.started).Round(time.Millisecond))
	switch {
	case up.quit:
		m.commit()
	case m.cfg.Upgrade.Commit == "auto":
		soak := m.cfg.Upgrade.Soak
		m.log.Info("upgrade commits automatically after the soak time", "soak", soak)
		up.timer = time.AfterFunc(soak, func() {
			m.post(func() {
				if m.up == up && up.state == upReady {
					m.commit()
				}
			})
		})
	default:
		m.log.Info("manual commit: send WINCH then QUIT to this master to commit; HUP to it and QUIT to the new master to roll back", "new_pid", up.pid)
	}
}

// requestCommit is QUIT to the old master during an upgrade.
func (m *Master) requestCommit() {
	switch up := m.up; up.state {
	case upStarting:
		up.quit = true
		m.log.Info("QUIT: committing as soon as the new master is ready", "new_pid", up.pid)
	case upReady:
		m.commit()
	default:
		m.log.Info("QUIT: the upgrade is already being committed")
	}
}

// commit retires this master's workers; finishCommit hands over once they are gone.
func (m *Master) commit() {
	up := m.up
	up.state = upCommitting
	up.stopTimer()
	m.log.Info("committing the upgrade: old workers drain", "new_pid", up.pid)
	if m.reload != nil {
		m.failReload("upgrade committing")
	}
	if m.current != nil {
		m.retire(m.current, false)
	}
}

// finishCommit tells N it is in charge and ends this master.
func (m *Master) finishCommit() {
	up := m.up
	up.state = upHandedOver
	if err := m.handOver(up); err != nil {
		// systemd still takes this master for the service: exiting now would stop the
		// service. Roll back instead.
		up.reason = "hand-over to systemd failed: " + err.Error()
		m.log.Error("cannot hand over to the new master; rolling back", "new_pid", up.pid, "err", err)
		up.signal(syscall.SIGTERM)
		return
	}
	if err := sendMsg(up.conn, handoffMsg{Type: "commit"}); err != nil {
		m.log.Error("cannot hand over to the new master; waiting to see it exit", "new_pid", up.pid, "err", err)
		return
	}
	m.log.Info("upgrade committed; the old master exits", "new_pid", up.pid, "took", time.Since(up.started).Round(time.Millisecond), "event", "upgrade-committed")
	up.answer(nil)
	m.stopControl()
	m.quit = true
}

// onNewMasterExit runs when N's pidfd says it exited. Before the handover this is a
// rollback: the pid file names this master again and its workers run again.
func (m *Master) onNewMasterExit(up *upgrade) {
	unix.Close(up.pidfd)
	up.conn.Close()
	up.stopTimer()
	if m.up != up {
		return
	}
	m.up = nil
	if m.stopping != running {
		m.log.Info("new master exited", "new_pid", up.pid)
		up.answer(errors.New("stopped"))
		return
	}
	reason := up.reason
	if reason == "" {
		reason = "exited"
	}
	m.lastErr = "upgrade rolled back: new master " + strconv.Itoa(up.pid) + " " + reason
	m.restorePIDFile() // before the log line: whoever reads it finds the pid file in place
	m.log.Error("upgrade rolled back: the new master exited before the upgrade was committed", "new_pid", up.pid, "reason", reason, "event", "upgrade-rolled-back")
	if m.current == nil {
		m.log.Info("starting workers again")
		if err := m.startCurrent(m.cfg); err != nil {
			m.log.Error("cannot start workers", "err", err)
		}
	}
	up.answer(errors.New(m.lastErr))
}

// rollbackWorkers is HUP to the old master during an upgrade (nginx): start its workers
// again, from the config they ran with, without re-reading the file.
func (m *Master) rollbackWorkers() {
	if m.up.state == upCommitting {
		m.up.state = upReady
		m.log.Warn("HUP: commit cancelled; QUIT the new master to roll back, or QUIT this one to commit")
	}
	if m.current != nil {
		m.log.Info("HUP during an upgrade: workers are running already")
		return
	}
	m.log.Info("HUP during an upgrade: starting workers again without re-reading the config")
	if err := m.startCurrent(m.cfg); err != nil {
		m.log.Error("cannot start workers", "err", err)
	}
}

func (m *Master) restorePIDFile() {
	if m.cfg.PIDFile == "" {
		return
	}
	if err := RestoreFromOldbin(m.cfg.PIDFile, m.pid); err != nil {
		m.log.Error("cannot restore the pid file", "err", err)
	}
}
