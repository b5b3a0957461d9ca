//go:build linux

package supervisor

import (
	"os"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/fdstore"
)

// system is everything the master does to the world outside its own memory: processes,
// signals, clocks, sockets, systemd, files. The master loop decides; system carries out.
// osSystem is the real one; the state machine's tests use a fake that records every call
// and never starts a process. A system reports what happens later (a process exits, a
// timer fires, a config was read, systemd answered) as events posted to the loop, never by
// calling the master directly. Its methods are called from the loop only, and none blocks
// for long: anything that may wait is started here and finishes as an event.
type system interface {
	now() time.Time
	// arm starts t; when it runs out, timerFired{t} is posted. It sets t.stop.
	arm(t *timer)

	// startWorkers forks and execs the workers ws (their pool, slot and command are set),
	// a few at a time, and returns one error per worker (nil: it runs; w.pid is set). The
	// exit of each started worker is posted as workerExited.
	startWorkers(ws []*worker) []error
	// signalGroup sends sig to the process group of w, which the worker leads. Only called
	// before w is reaped, so the group's id cannot name anyone else.
	signalGroup(w *worker, sig syscall.Signal)
	// groupsLinger reports, for each of ws, whether processes of its group other than the
	// worker itself remain: one look at the process table for all of them.
	groupsLinger(ws []*worker) []bool
	// reap releases the exited w: its pid, and its group's id, are free from then on.
	reap(w *worker)
	// trimMemory gives the garbage of a finished cycle back to the kernel, off the loop.
	trimMemory()

	// startNewMaster starts the new binary detached, with the hand-over socket, hello and
	// the listeners queued on it. Its messages are posted as newMasterMsg, its exit as
	// newMasterExited.
	startNewMaster(hello handoffMsg, ls []*fdstore.Listener) (*upgrade, error)
	// signalNewMaster signals the new master through its pidfd.
	signalNewMaster(up *upgrade, sig syscall.Signal)
	// releaseNewMaster lets go of an exited new master (its pidfd).
	releaseNewMaster(up *upgrade)

	// notify sends one datagram to systemd (with files, over SCM_RIGHTS). Callers check
	// that this master is in charge.
	notify(files []*os.File, state ...string) error
	// handOver names up's master systemd's main process and makes sure systemd processed it
	// (BARRIER=1); the outcome is posted as handOverDone.
	handOver(up *upgrade)

	// waitMain waits, off the loop, until systemd takes this master for the service's
	// main process (or a bound passes); the outcome is posted as becameMain{p}.
	waitMain(p *parent)

	// askUnitStopping asks systemd, off the loop, whether it is stopping this master's
	// unit; the answer is posted as unitState.
	askUnitStopping()

	// loadConfig reads the configuration, and looks up the listeners' host names, off the
	// loop; the result is posted as configLoaded{seq}.
	loadConfig(seq int)
	// resolve merges the listeners specs ask for (looked up already: no name lookups)
	// with the ones the master has (fdstore.Resolve).
	resolve(specs []fdstore.Spec, have []*fdstore.Listener) (use, unused []*fdstore.Listener, err error)

	// runCheck starts a run of a probation's health check, off the loop; its result is
	// posted as checkDone{c.pr, c.seq}. stopCheck kills pr's run in flight, if any, and
	// forgets pr. environ is the master's environment, for a check's.
	runCheck(c checkRun)
	stopCheck(pr *probation)
	environ() []string

	// The pid file (pidfile.go).
	writePID(path string, pid int) error
	toOldbin(path string, pid int) error
	restorePID(path string, pid int) error
	removePID(path string, pid int)
}

// link is one end of the hand-over socket between an old and a new master.
type link interface {
	send(msg handoffMsg) error
	close()
}
