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
)

type workerState int

const (
	workerStarting  workerState = iota // forked, not ready yet
	workerReady                        // said READY=1 (or ready = "started")
	workerStopping                     // asked to stop (stop signal sent; SIGKILL at its timer)
	workerLingering                    // exited, but its process group has members left
	workerExited                       // exited and reaped, group empty
)

func (s workerState) String() string {
	return [...]string{"starting", "ready", "stopping", "lingering", "exited"}[s]
}

// worker is one process of the user's command, and the process group it leads: whatever
// it forks stays in that group unless it leaves on purpose (setsid, setpgid), and every
// signal baton sends a worker goes to the whole group. The master loop owns it.
type worker struct {
	pool    *pool
	slot    int // 1-based, exported as BATON_WORKER
	pid     int
	pidfd   int // osSystem: a pidfd of the leader, until it is reaped
	state   workerState
	started time.Time
	readyAt time.Time
	status  string     // the worker's last STATUS=
	exit    exitStatus // once it exited
	timer   *timer     // start timeout; when ready, its watchdog (if any); then the kill after its stop signal
	linger  *timer     // lingering: when to look at the group again
	retired bool       // stopped by the master (retire, stop): its exit is no failure
	// unchecked: lingering only because its group was not looked at yet. A retiring pool's
	// workers exit in a burst; their groups are looked at together, in one pass over /proc,
	// when the last of them has exited (resolveExits).
	unchecked bool
	killed    bool          // SIGKILL sent to its group
	watchdog  time.Duration // set by its WATCHDOG_USEC=: its own watchdog interval (0: the config's)
	extended  time.Time     // its EXTEND_TIMEOUT_USEC= moved its start deadline here (zero: never)

	failReason string // why the master stopped it, if it did so as a failure
	logWarning string // set by startWorkers: why it writes to the master's journal stream rather than its own
}

// exitStatus is how a process ended.
type exitStatus struct {
	known  bool
	code   int
	signal syscall.Signal
}

func (e exitStatus) String() string {
	switch {
	case !e.known:
		return "exited (status unknown)"
	case e.signal != 0:
		if _, ok := signalNames[e.signal]; ok {
			return "killed by SIG" + signalName(e.signal) // as kill -l and systemd spell it
		}
		return "killed by " + signalName(e.signal)
	}
	return "exit status " + strconv.Itoa(e.code)
}

// masterOnlyEnv are the variables a master never passes on to a worker as they are: they
// describe the master's own sockets and its own relation to systemd.
var masterOnlyEnv = []string{
	"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
	"WATCHDOG_PID", upgradeFDEnv, "BATON_GENERATION", "BATON_WORKER", "BATON_STOP_TIMEOUT",
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
// master, plus the config's env, plus the socket-activation protocol, plus who it is and
// how long it may drain (stopTimeoutEnv).
func workerEnv(base []string, cfg config.Worker, ls []*fdstore.Listener, notify string, gen, slot int) []string {
	env := append(dropEnv(base, masterOnlyEnv...), cfg.Env...)
	if len(ls) > 0 {
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(ls)), "LISTEN_FDNAMES="+fdstore.Names(ls))
	}
	if notify != "" {
		env = append(env, "NOTIFY_SOCKET="+notify)
	}
	if cfg.Watchdog > 0 {
		// WATCHDOG_PID, the worker's own pid, is set between fork and exec (spawn).
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(cfg.Watchdog.Microseconds(), 10))
	}
	return append(env, "BATON_GENERATION="+strconv.Itoa(gen), "BATON_WORKER="+strconv.Itoa(slot),
		"BATON_STOP_TIMEOUT="+stopTimeoutEnv(cfg.StopTimeout))
}

// stopTimeoutEnv is stop_timeout as BATON_STOP_TIMEOUT gives it: seconds, a decimal number
// ("30", "1.5", "0.25"). Seconds because that is what servers' own drain options take
// (gunicorn's --graceful-timeout, uWSGI's, Puma's, `timeout`, `sleep`), so a wrapper passes
// it on as it is; a decimal number because every language reads one (strtod, parseFloat,
// float(), strconv.ParseFloat) and a whole number of seconds, the usual case, is an
// integer too. The deadline runs from the worker's own stop signal.
func stopTimeoutEnv(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
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

// exitReason describes how a worker ended, for logs and STATUS.
func (w *worker) exitReason() string {
	if w.failReason != "" {
		return w.failReason
	}
	return w.exit.String()
}
