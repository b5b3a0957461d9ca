//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/internal/spawn"
)

// osSystem is the real system: processes, pidfds, timers, systemd.
type osSystem struct {
	m    *Master
	exe  string
	args []string
	dir  *os.File // the working directory at start (O_PATH): a new master starts there even if it was deleted

	trimming atomic.Bool // a trimMemory runs

	checks map[*probation]chan struct{} // health checks: closing one stops pr's run (check_linux.go); the loop's
}

func (s *osSystem) open() error {
	d, err := os.OpenFile(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	s.dir = d
	return nil
}

func (s *osSystem) close() {
	if s.dir != nil {
		s.dir.Close()
		s.dir = nil
	}
}

func (s *osSystem) now() time.Time { return time.Now() }

func (s *osSystem) arm(t *timer) {
	tt := time.AfterFunc(t.d, func() { s.m.post(timerFired{t}) })
	t.stop = func() { tt.Stop() }
}

// startWorkers forks a few at a time: each start returns once its child has exec'd the
// program, and the next fork need not wait for that.
func (s *osSystem) startWorkers(ws []*worker) []error {
	errs := make([]error, len(ws))
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, w := range ws {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = s.startWorker(w) // reads only what the blocked loop owns
		})
	}
	wg.Wait()
	return errs
}

// startWorker forks and execs one worker (internal/spawn): stdout and stderr come from
// the relay (output.go), or, where they are the journal stream, from a journal stream the
// worker connects itself (its own identifier and _PID); the listeners become fds 3..,
// LISTEN_PID is the worker's own pid, USR2 and WINCH start ignored, it leads a process
// group of its own, and gets its stop signal if the master dies; everything else the
// master holds is close-on-exec.
func (s *osSystem) startWorker(w *worker) error {
	m, p := s.m, w.pool
	out, err := m.output.Open()
	if err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	defer out.Close() // the worker holds its own copies once started
	files := append([]*os.File{m.devNull, out.Stdout, out.Stderr}, fdstore.Files(p.listeners)...)
	attr := &spawn.Attr{
		Path:       p.cfg.Command[0],
		Args:       p.cfg.Command,
		Env:        workerEnv(os.Environ(), p.cfg, p.listeners, p.notify, m.gen, w.slot),
		Dir:        p.cfg.Dir,
		Files:      files,
		Setpgid:    true,             // signals go to the group: whatever the worker forks goes with it
		Pdeathsig:  p.cfg.StopSignal, // a worker drains, and does not outlive a master that died
		Credential: p.cred,
		Ignore:     forkSignals,
		ListenPID:  len(p.listeners) > 0,
		// sd_watchdog_enabled(3) takes WATCHDOG_USEC only with WATCHDOG_PID unset or its
		// own: set, so that what the worker starts does not take the worker's watchdog.
		WatchdogPID: p.cfg.Watchdog > 0,
		Nofile:      m.nofile,
	}
	if js, je := m.output.Journal(); js || je {
		attr.Journal = &spawn.Journal{Identifier: p.cfg.JournalIdentifier(), Stdout: js, Stderr: je}
	}
	var proc *os.Process
	var warning error
	err = withForkSignalsBlocked(func() (err error) {
		proc, warning, err = spawn.Start(attr)
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	if warning != nil {
		w.logWarning = warning.Error()
	}
	// Not reaped until the loop says so: the pid (and the group's id) cannot be reused
	// under us while a pidfd is open and the child unreaped.
	pid := proc.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		proc.Kill()
		proc.Wait()
		return fmt.Errorf("cannot start: %w", os.NewSyscallError("pidfd_open", err))
	}
	proc.Release()
	w.pid, w.pidfd = pid, pidfd
	go func() {
		st := waitExited(pidfd)
		s.m.post(workerExit{w: w, status: st})
	}()
	return nil
}

// waitExited waits until the process of pidfd has exited, without reaping it, and returns
// how it ended.
func waitExited(pidfd int) exitStatus {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			return siginfoStatus(&info)
		}
		if err != unix.EINTR {
			return exitStatus{}
		}
	}
}

// siginfoStatus reads si_status of a SIGCHLD siginfo: the union after signo, errno and
// code starts at the first pointer-aligned offset (12 on 32-bit, 16 on 64-bit Linux), and
// holds si_pid, si_uid, then si_status.
func siginfoStatus(info *unix.Siginfo) exitStatus {
	union := (3*4 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	status := *(*int32)(unsafe.Add(unsafe.Pointer(info), union+8))
	const cldExited, cldKilled, cldDumped = 1, 2, 3 // si_code of SIGCHLD
	switch info.Code {
	case cldExited:
		return exitStatus{known: true, code: int(status)}
	case cldKilled, cldDumped:
		return exitStatus{known: true, signal: syscall.Signal(status)}
	}
	return exitStatus{}
}

func (s *osSystem) signalGroup(w *worker, sig syscall.Signal) {
	if w.pidfd < 0 || w.state == workerExited {
		return
	}
	// The leader is not reaped, so its pid still names its group and no other.
	unix.Kill(-w.pid, sig)
}

// groupsLinger looks for processes of the workers' groups other than the workers
// themselves, in one pass over /proc: a retiring pool's workers exit in a burst, and a
// pass costs the kernel a lookup of every process on the machine.
func (s *osSystem) groupsLinger(ws []*worker) []bool {
	pgids := make(map[int]bool, len(ws))
	for _, w := range ws {
		pgids[w.pid] = false
	}
	groupsHaveOthers(pgids)
	r := make([]bool, len(ws))
	for i, w := range ws {
		r[i] = pgids[w.pid]
	}
	return r
}

// groupsHaveOthers sets pgids[g] for each group g (led by the process g) that has a live
// member other than its leader.
func groupsHaveOthers(pgids map[int]bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	left := len(pgids)
	for left > 0 {
		names, err := d.Readdirnames(512)
		for _, n := range names {
			pid, err := strconv.Atoi(n)
			if err != nil {
				continue
			}
			if _, leader := pgids[pid]; leader {
				continue
			}
			// getpgid is one system call where reading /proc/PID/stat costs the kernel a
			// formatted page: this runs on the loop, so the stat file is read only for
			// members, to tell a live one from a zombie.
			g, err := unix.Getpgid(pid)
			if err != nil {
				continue
			}
			if found, ok := pgids[g]; !ok || found {
				continue
			}
			if g2, alive := procPgrp(pid); alive && g2 == g {
				pgids[g] = true
				left--
			}
		}
		if err != nil {
			return
		}
	}
}

// procPgrp reads the process group of pid from /proc/PID/stat (its 5th field, after the
// parenthesised command, which may hold spaces and parentheses).
func procPgrp(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	var state byte
	var ppid, pgrp int
	if i < 0 {
		return 0, false
	}
	if _, err := fmt.Sscanf(string(b[i+1:]), " %c %d %d", &state, &ppid, &pgrp); err != nil {
		return 0, false
	}
	return pgrp, state != 'Z' && state != 'X' // a zombie is dead, whoever reaps it
}

// trimMemory runs a GC and returns the free heap to the kernel (debug.FreeOSMemory), in a
// goroutine of its own, one at a time. A reload or an upgrade leaves a few MiB of garbage
// (configs, pools, relay buffers, hand-over messages) that an idle master, which seldom
// runs a GC, would otherwise keep: 1,500 reloads took the master from 10.2 to 15.9 MiB.
// A GC of the master's small heap costs about a millisecond of CPU, once per cycle.
func (s *osSystem) trimMemory() {
	if s.trimming.CompareAndSwap(false, true) {
		go func() {
			defer s.trimming.Store(false)
			debug.FreeOSMemory()
		}()
	}
}

func (s *osSystem) reap(w *worker) {
	if w.pidfd < 0 {
		return
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PIDFD, w.pidfd, &info, unix.WEXITED|unix.WNOHANG, nil)
		if err != unix.EINTR {
			break
		}
	}
	unix.Close(w.pidfd)
	w.pidfd = -1
}

// startNewMaster starts N with CLONE_PARENT, so that it is the child of whatever started
// this master (systemd, a subreaper), and takes a pidfd of it. The hello message and the
// listeners are queued on the socketpair before N runs.
func (s *osSystem) startNewMaster(hello handoffMsg, handed []*fdstore.Listener) (*upgrade, error) {
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
		var oe *net.OpError // "file file+net handoff: fcntl: …" says nothing more
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, fmt.Errorf("hand-over socket: %w", err)
	}
	conn := c.(*net.UnixConn)
	if err := sendMsg(conn, hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handoff: %w", err)
	}
	conn.SetWriteDeadline(time.Now().Add(handoffTimeout))
	if err := fdstore.Send(conn, handed); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handoff: %w", err)
	}
	env := append(dropEnv(os.Environ(), "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", upgradeFDEnv), upgradeFDEnv+"=3")
	argv := append([]string{s.exe}, s.args...)
	pidfd := -1
	attr := &syscall.ProcAttr{
		// The working directory baton started in, through its fd: it may have been deleted
		// or replaced since; the child resolves the link before it execs.
		Dir:   "/proc/self/fd/" + strconv.Itoa(int(s.dir.Fd())),
		Env:   env,
		Files: []uintptr{0, 1, 2, theirs.Fd()},
		Sys:   &syscall.SysProcAttr{Cloneflags: syscall.CLONE_PARENT, PidFD: &pidfd},
	}
	var pid int
	fork := func() (err error) {
		pid, err = syscall.ForkExec(s.exe, argv, attr)
		return err
	}
	err = withForkSignalsBlocked(fork)
	if errors.Is(err, syscall.EINVAL) {
		// CLONE_PARENT is refused to the init of a pid namespace: there, a child is as
		// detached as it gets.
		attr.Sys.Cloneflags = 0
		err = withForkSignalsBlocked(fork)
	}
	runtime.KeepAlive(s.dir)
	if err != nil {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		conn.Close()
		return nil, fmt.Errorf("start %s: %w", s.exe, err)
	}
	up := &upgrade{pid: pid, pidfd: pidfd, link: connLink{conn}}
	readDone := make(chan struct{})
	go s.readNewMaster(up, conn, readDone)
	go s.watchNewMaster(up, readDone)
	return up, nil
}

// watchNewMaster waits for N to exit, on its pidfd. It lets the reader finish first (N's
// socket reaches end-of-file when N exits), so that what N said just before it exited is
// known when the exit is handled, and asks the kernel how N ended (pidfdExit).
func (s *osSystem) watchNewMaster(up *upgrade, readDone chan struct{}) {
	fds := []unix.PollFd{{Fd: int32(up.pidfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err != unix.EINTR {
			break
		}
	}
	how := make(chan string, 1)
	go func() { how <- pidfdExit(up.pidfd, exitInfoWait) }()
	select {
	case <-readDone:
	case <-time.After(time.Second): // a child of N holds the socket open
	}
	s.m.post(newMasterExited{up: up, how: <-how}) // the loop closes the pidfd (releaseNewMaster)
}

// exitInfoWait bounds how long an old master waits for N's exit status: the kernel has it
// once N's parent (systemd, or whatever started the first master) has reaped N.
const exitInfoWait = time.Second

// pidfdExit tells how the exited process of pidfd ended ("killed by SIGKILL", "exit status
// 1"). N is not this master's child (CLONE_PARENT), so waitid cannot see it; since Linux
// 6.15 the pidfd's PIDFD_GET_INFO ioctl can, with PIDFD_INFO_EXIT, once N's parent has
// reaped it. It asks every 10 ms until wait has passed.
func pidfdExit(pidfd int, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
		err := unix.IoctlPidfdInfo(pidfd, &info)
		switch {
		case err == unix.ENOTTY || err == unix.EINVAL || err == unix.EOPNOTSUPP:
			return "exit status unknown (kernel < 6.15)"
		case err != nil && err != unix.ESRCH && err != unix.EINTR:
			return "exit status unknown (" + os.NewSyscallError("ioctl PIDFD_GET_INFO", err).Error() + ")"
		case err == nil && info.Supported_mask != 0 && info.Supported_mask&unix.PIDFD_INFO_EXIT == 0:
			return "exit status unknown (kernel < 6.15)"
		case err == nil && info.Mask&unix.PIDFD_INFO_EXIT != 0:
			return waitStatus(syscall.WaitStatus(info.Exit_code)).String()
		}
		if time.Now().After(deadline) {
			if err == unix.ESRCH { // 6.13 and 6.14 have the ioctl, not the exit status
				return fmt.Sprintf("exit status unknown (kernel < 6.15, or not reaped by its parent within %s)", wait)
			}
			return fmt.Sprintf("exit status unknown (not reaped by its parent within %s)", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStatus is how a process ended, from a wait(2) status.
func waitStatus(ws syscall.WaitStatus) exitStatus {
	switch {
	case ws.Exited():
		return exitStatus{known: true, code: ws.ExitStatus()}
	case ws.Signaled():
		return exitStatus{known: true, signal: ws.Signal()}
	}
	return exitStatus{}
}

// readNewMaster posts N's messages.
func (s *osSystem) readNewMaster(up *upgrade, conn *net.UnixConn, done chan struct{}) {
	defer close(done)
	for {
		msg, err := readMsg(conn)
		if err != nil {
			return
		}
		s.m.post(newMasterMsg{up, msg})
	}
}

// signalNewMaster sends sig to N through its pidfd: no pid-reuse race. The loop does not
// call it once N's exit was posted (the pidfd is closed then).
func (s *osSystem) signalNewMaster(up *upgrade, sig syscall.Signal) {
	if up.pidfd >= 0 {
		unix.PidfdSendSignal(up.pidfd, sig, nil, 0)
	}
}

func (s *osSystem) releaseNewMaster(up *upgrade) {
	if up.pidfd >= 0 {
		unix.Close(up.pidfd)
		up.pidfd = -1
	}
}

func (s *osSystem) notify(files []*os.File, state ...string) error {
	if files != nil {
		return s.m.sd.NotifyWithFiles(files, state...)
	}
	return s.m.sd.Notify(state...)
}

// handOver names N systemd's main process, and waits (off the loop) until systemd has
// processed it (BARRIER=1). If systemd does not confirm, it asks systemd over D-Bus which
// process it takes for the service's main one.
func (s *osSystem) handOver(up *upgrade) {
	m := s.m
	// systemd 257 also takes the new master by pidfd (MAINPIDFD=1, the fd attached), immune
	// to pid reuse, and then prefers it; 252 and 254 ignore the key but log "Got extra
	// auxiliary fds with notification message" for the fd (labtest, 2026-11-22), so
	// they get MAINPID= alone. 255 and 256 were not tried.
	version := 0
	if m.opts.SystemdVersion != nil {
		version = m.opts.SystemdVersion()
	}
	var err error
	if version >= 257 {
		err = m.sd.NotifyWithFDs([]int{up.pidfd}, "MAINPID="+strconv.Itoa(up.pid), "MAINPIDFD=1")
	} else {
		err = m.sd.Notify("MAINPID=" + strconv.Itoa(up.pid))
	}
	m.log.Info("main process handed to the new master", "new_pid", up.pid, "systemd", version, "by_pidfd", version >= 257)
	if err != nil {
		// Not sent: systemd still takes this master for the main process.
		m.post(handOverDone{up: up, err: fmt.Errorf("sd_notify MAINPID=%d: %w", up.pid, err), mainPID: m.pid})
		return
	}
	go func() {
		err := m.sd.Barrier(5 * time.Second)
		main := 0
		if err != nil {
			err = fmt.Errorf("sd_notify barrier after MAINPID=%d: %w", up.pid, err)
			if m.opts.SystemdMainPID != nil {
				main, _ = m.opts.SystemdMainPID(m.pid)
			}
		}
		m.post(handOverDone{up: up, err: err, mainPID: main})
	}()
}

// mainWait bounds how long a new master whose old master died waits for systemd to make
// it main (measured: 11-105 ms, labtest TestKillOldMasterBeforeCommit).
const mainWait = 5 * time.Second

func (s *osSystem) waitMain(p *parent) {
	m := s.m
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), mainWait)
		defer cancel()
		main, err := m.opts.WaitMainPID(ctx, m.pid)
		m.post(becameMain{p: p, mainPID: main, err: err})
	}()
}

// unitWait bounds the question whether systemd is stopping the unit.
const unitWait = 2 * time.Second

func (s *osSystem) askUnitStopping() {
	m := s.m
	go func() {
		if m.opts.UnitStopping == nil {
			m.post(unitState{err: errors.New("no way to ask systemd")})
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), unitWait)
		defer cancel()
		stopping, err := m.opts.UnitStopping(ctx, m.pid)
		m.post(unitState{stopping: stopping, err: err})
	}()
}

func (s *osSystem) loadConfig(seq int) {
	m := s.m
	path := m.cfg.Path
	go func() {
		stamp := configStamp(path)
		cfg, specs, err := loadConfig(m.opts.Load)
		m.post(configLoaded{seq: seq, cfg: cfg, specs: specs, err: err, stamp: stamp})
	}()
}

// lookupTimeout bounds the name lookups of a config's listeners.
const lookupTimeout = 10 * time.Second

// loadConfig reads and checks a configuration, and looks up its listeners' host names.
func loadConfig(load func() (*config.Config, error)) (*config.Config, []fdstore.Spec, error) {
	cfg, err := load()
	if err != nil {
		return nil, nil, err
	}
	if err := Precheck(cfg); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	ss, err := fdstore.LookupSpecs(ctx, specs(cfg))
	if err != nil {
		return nil, nil, err
	}
	return cfg, ss, nil
}

func (s *osSystem) resolve(specs []fdstore.Spec, have []*fdstore.Listener) ([]*fdstore.Listener, []*fdstore.Listener, error) {
	return fdstore.Resolve(specs, have)
}

func (s *osSystem) writePID(path string, pid int) error   { return WritePIDFile(path, pid) }
func (s *osSystem) toOldbin(path string, pid int) error   { return RenameToOldbin(path, pid) }
func (s *osSystem) restorePID(path string, pid int) error { return RestoreFromOldbin(path, pid) }
func (s *osSystem) removePID(path string, pid int) {
	if err := RemovePIDFile(path, pid); err != nil {
		s.m.log.Warn("cannot remove pid file", "err", err)
	}
}
