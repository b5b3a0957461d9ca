//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/internal/spawn"
)

type workerState int

const (
	workerStarting workerState = iota // forked, not ready yet
	workerReady                       // said READY=1 (or ready = "started")
	workerStopping                    // asked to stop (stop signal or SIGKILL sent)
	workerExited
)

func (s workerState) String() string {
	return [...]string{"starting", "ready", "stopping", "exited"}[s]
}

// worker is one process of the user's command. The master loop owns it.
type worker struct {
	pool    *pool
	slot    int // 1-based, exported as BATON_WORKER
	proc    *os.Process
	exit    *os.ProcessState // once reaped
	pid     int
	state   workerState
	started time.Time
	readyAt time.Time
	status  string      // the worker's last STATUS=
	killed  bool        // SIGKILL sent by us
	timer   *time.Timer // start timeout, then stop timeout

	failReason string // why the master killed it, if it did
}

// masterOnlyEnv are the variables a master never passes on to a worker as they are: they
// describe the master's own sockets and its own relation to systemd.
var masterOnlyEnv = []string{
	"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
	"WATCHDOG_PID", upgradeFDEnv, "BATON_GENERATION", "BATON_WORKER",
}

// dropEnv returns env without the variables named.
func dropEnv(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

// workerEnv is the environment of a worker: the master's own, less what describes the
// master, plus the config's env, plus the socket-activation protocol.
func workerEnv(base []string, cfg config.Worker, ls []*fdstore.Listener, notify string, gen, slot int) []string {
	env := append(dropEnv(base, masterOnlyEnv...), cfg.Env...)
	if len(ls) > 0 {
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(ls)), "LISTEN_FDNAMES="+fdstore.Names(ls))
	}
	if notify != "" {
		env = append(env, "NOTIFY_SOCKET="+notify)
	}
	return append(env, "BATON_GENERATION="+strconv.Itoa(gen), "BATON_WORKER="+strconv.Itoa(slot))
}

// credential resolves the worker's user and group, or returns nil to run as the master.
func credential(cfg config.Worker) (*syscall.Credential, error) {
	if cfg.User == "" && cfg.Group == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if cfg.User != "" {
		u, err := lookupUser(cfg.User)
		if err != nil {
			return nil, fmt.Errorf("worker.user %q: %w", cfg.User, err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(g))
				}
			}
		}
	}
	if cfg.Group != "" {
		g, err := lookupGroup(cfg.Group)
		if err != nil {
			return nil, fmt.Errorf("worker.group %q: %w", cfg.Group, err)
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		cred.Gid = uint32(gid)
	}
	return cred, nil
}

func lookupUser(s string) (*user.User, error) {
	if _, err := strconv.Atoi(s); err == nil {
		return user.LookupId(s)
	}
	return user.Lookup(s)
}

func lookupGroup(s string) (*user.Group, error) {
	if _, err := strconv.Atoi(s); err == nil {
		return user.LookupGroupId(s)
	}
	return user.LookupGroup(s)
}

// startWorker forks and execs one worker (internal/spawn): stdout and stderr come from
// the relay (output.go), the listeners become fds 3.., LISTEN_PID is the worker's own
// pid, USR2 and WINCH start ignored; everything else the master holds is close-on-exec.
// It returns once the worker's program runs, or with the reason it could not start it.
func (m *Master) startWorker(p *pool, slot int) (*worker, error) {
	out, err := m.output.Open() // its stdout and stderr (output.go)
	if err != nil {
		return nil, fmt.Errorf("start worker %d: %w", slot, err)
	}
	defer out.Close() // the worker holds its own copies once started
	files := append([]*os.File{m.devNull, out.Stdout, out.Stderr}, fdstore.Files(p.listeners)...)
	attr := &spawn.Attr{
		Path:       p.cfg.Command[0],
		Args:       p.cfg.Command,
		Env:        workerEnv(os.Environ(), p.cfg, p.listeners, m.notify.Addr(), m.gen, slot),
		Dir:        p.cfg.Dir,
		Files:      files,
		Setpgid:    true,            // a terminal's ^C reaches the master only
		Pdeathsig:  syscall.SIGTERM, // a worker does not outlive a master that died
		Credential: p.cred,
		Ignore:     forkSignals,
		ListenPID:  len(p.listeners) > 0,
		Nofile:     m.nofile,
	}
	var proc *os.Process
	err = withForkSignalsBlocked(func() (err error) {
		proc, err = spawn.Start(attr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start worker %d: %w", slot, err)
	}
	w := &worker{pool: p, slot: slot, proc: proc, pid: proc.Pid, started: time.Now()}
	go func() {
		st, err := proc.Wait()
		if err != nil {
			m.log.Error("cannot wait for a worker", "worker_pid", w.pid, "err", err)
		}
		m.post(func() {
			w.exit = st
			m.onWorkerExit(w)
		})
	}()
	return w, nil
}

// signal sends sig to the worker's process, if it has not exited yet.
func (w *worker) signal(sig syscall.Signal) {
	if w.state == workerExited {
		return
	}
	w.proc.Signal(sig)
}

func (w *worker) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// exitReason describes how a worker ended, for logs and STATUS.
func (w *worker) exitReason() string {
	if w.failReason != "" {
		return w.failReason
	}
	ps := w.exit
	if ps == nil {
		return "unknown"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + signalName(ws.Signal())
	}
	return "exit status " + strconv.Itoa(ps.ExitCode())
}
