//go:build linux

package supervisor

import (
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/sdnotify"
)

// The master's events. Every goroutine other than the loop (signal delivery, process
// watchers, socket readers, timers, config parsing, the hand-over's barrier) only posts one
// of these; Master.handle decides what each means in the master's current role.
type event interface{ eventName() string }

// sigEvent: a signal to the master.
type sigEvent struct{ sig syscall.Signal }

// workerExit: a worker's process (its group leader) exited; it is not reaped yet, so its
// pid, and its process group's id, still name it.
type workerExit struct {
	w      *worker
	status exitStatus
}

// notifyEvent: a datagram on the workers' notify socket (the kernel-checked sender pid in
// msg.PID), or a malformed one (err set).
type notifyEvent struct {
	msg sdnotify.Message
	err error
}

// timerFired: one of the master's timers ran out. Stale firings (a timer stopped or
// replaced after it fired) are recognised by t and dropped.
type timerFired struct{ t *timer }

// controlEvent: a request on the control socket; reply answers it, once, without blocking.
type controlEvent struct {
	req   ControlRequest
	reply replyFunc
	stamp string // configStamp when the request arrived (reload --wait only)
}

// newMasterMsg: the new master of the upgrade in flight sent a message (old master's side).
type newMasterMsg struct {
	up  *upgrade
	msg handoffMsg
}

// newMasterExited: the new master's pidfd says it exited (old master's side). how says how
// it ended ("killed by SIGKILL", "exit status 1"), as far as the kernel told (pidfdExit);
// "" when nobody could tell.
type newMasterExited struct {
	up  *upgrade
	how string
}

// oldMasterMsg: the old master sent a message (new master's side): commit.
type oldMasterMsg struct {
	p   *parent
	msg handoffMsg
}

// oldMasterGone: the old master's end of the hand-over socket closed (new master's side).
type oldMasterGone struct{ p *parent }

// becameMain: systemd names this new master, whose old master died before the commit, its
// main process (err nil), or did not within a bound; mainPID is its answer.
type becameMain struct {
	p       *parent
	mainPID int
	err     error
}

// configLoaded: a configuration read off the loop for a reload (seq names the reload).
type configLoaded struct {
	seq   int
	cfg   *config.Config
	specs []fdstore.Spec // cfg's listeners, host names looked up
	err   error
	stamp string // configStamp of the file before it was read
}

// handOverDone: systemd has processed MAINPID= (err nil), or could not be made sure of it;
// mainPID is then what systemd says the main process is (0: it could not be asked).
type handOverDone struct {
	up      *upgrade
	err     error
	mainPID int
}

// unitState: systemd's answer to whether it is stopping this master's unit (err: it could
// not be asked), asked because QUIT arrived during an upgrade.
type unitState struct {
	stopping bool
	err      error
}

func (sigEvent) eventName() string        { return "signal" }
func (workerExit) eventName() string      { return "worker-exited" }
func (notifyEvent) eventName() string     { return "notify" }
func (timerFired) eventName() string      { return "timer" }
func (controlEvent) eventName() string    { return "control" }
func (newMasterMsg) eventName() string    { return "new-master-message" }
func (newMasterExited) eventName() string { return "new-master-exited" }
func (oldMasterMsg) eventName() string    { return "old-master-message" }
func (oldMasterGone) eventName() string   { return "old-master-gone" }
func (configLoaded) eventName() string    { return "config-loaded" }
func (becameMain) eventName() string      { return "became-main" }
func (handOverDone) eventName() string    { return "hand-over-done" }
func (unitState) eventName() string       { return "unit-state" }

// timerKind says what a timer is for; its target is in the timer.
type timerKind int

const (
	tWorkerStart    timerKind = iota // w not ready within start_timeout
	tWorkerKill                      // w (its group) did not stop within its grace: SIGKILL
	tWorkerLinger                    // w exited; look again whether its group is empty
	tRestart                         // restart slot of p after the backoff
	tUpgradeReady                    // the new master not ready within upgrade.timeout
	tSoak                            // the soak time after the new master was ready: commit
	tNewMasterKill                   // the new master did not exit after TERM/QUIT: SIGKILL
	tWatchdog                        // ping systemd's watchdog
	tProgress                        // new master: send the progress held back by progressEvery
	tReloadSoak                      // a reload's probation: its soak ran out
	tCheck                           // a probation: run the health check again
	tRollBack                        // a failed rolling reload: the old workers' wait is over
	tRestore                         // a rolled-back rolling upgrade: the old workers' wait is over
	tWorkerWatchdog                  // ready w sent no WATCHDOG=1 within its watchdog interval (watchdog.go)
	tSpread                          // retiring p: the next stop signal of its stop_spread is due
)

var timerNames = [...]string{
	tWorkerStart: "worker-start", tWorkerKill: "worker-kill", tWorkerLinger: "worker-linger",
	tRestart: "restart", tUpgradeReady: "upgrade-ready", tSoak: "soak",
	tNewMasterKill: "new-master-kill", tWatchdog: "watchdog", tProgress: "progress",
	tReloadSoak: "reload-soak", tCheck: "check", tRollBack: "roll-back", tRestore: "restore",
	tWorkerWatchdog: "worker-watchdog",
	tSpread:         "spread",
}

func (k timerKind) String() string { return timerNames[k] }

// timer is one armed timer of the master; the loop owns it. Exactly one of its targets is
// set, by kind.
type timer struct {
	kind timerKind
	d    time.Duration
	w    *worker
	p    *pool
	slot int
	up   *upgrade
	pr   *probation
	at   time.Time // when it was armed (Master.arm): at+d is its deadline, for baton status

	stop func() // set by the system that armed it
}
