//go:build linux

package supervisor

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/metrics"
)

// The handoff protocol between an old master (O) and the new master (N) it starts on
// SIGUSR2, over an inherited SOCK_SEQPACKET socketpair (fd 3 in N, named by
// BATON_UPGRADE_FD). One JSON object per packet:
//
//	O → N  {"type":"hello","generation":2,"old_pid":…,"config":…,"watchdog_usec":…,"nofile":…,"history":[…]}
//	O → N  the listeners, by name (fdstore.Send: SCM_RIGHTS)
//	N → O  {"type":"progress","progress":{…}}  N's state and workers (MasterSnapshot), when
//	       they change, at most every progressEvery
//	N → O  {"type":"ready"}              every worker of N is ready
//	N → O  {"type":"error","reason":…}   N gives up (then exits)
//	N → O  {"type":"exit","code":…,"reason":…}  N's last word before it exits uncommitted
//	N → O  {"type":"batch","slots":[…]}  a rolling upgrade: N's workers of these slots are
//	       ready; O retires its own of the same slots
//	O → N  {"type":"go"}                 those old workers are gone: N starts its next batch
//	O → N  {"type":"committing"}         O's soak is over (or the operator committed): its
//	       workers drain; N's probation is over
//	O → N  {"type":"commit","metrics":…} O has retired its workers and exits: N is in charge
//
// N learns that O is gone, committed or not, from end-of-file; O learns that N is gone
// from N's pidfd.

const upgradeFDEnv = "BATON_UPGRADE_FD"

// handoffTimeout bounds each blocking step of the handshake, so that a broken peer can
// never wedge a master.
const handoffTimeout = 10 * time.Second

type handoffMsg struct {
	Type         string `json:"type"`
	Generation   int    `json:"generation,omitempty"`
	OldPID       int    `json:"old_pid,omitempty"`
	Config       string `json:"config,omitempty"`
	WatchdogUsec uint64 `json:"watchdog_usec,omitempty"`
	// Nofile is the RLIMIT_NOFILE the service started with, for N's workers: N's own was
	// raised by the Go runtime, and asking a shell for the original is a process start
	// the upgrade need not wait for.
	Nofile *syscall.Rlimit `json:"nofile,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Code   int             `json:"code,omitempty"` // exit: N's exit code
	// Progress is N's snapshot of itself (progress), for the old master's baton status.
	Progress *MasterSnapshot `json:"progress,omitempty"`
	// History is O's lifecycle history (hello): N carries it on and adds the upgrade's
	// outcome.
	History []HistoryEntry `json:"history,omitempty"`
	// Metrics are the old master's totals, in commit: the new master adds them to its own.
	Metrics *metrics.Counts `json:"metrics,omitempty"`
	// Roll (hello): the old master retires its workers slot by slot when the new master's
	// batches are ready (a rolling upgrade, rolling.go); Workers: how many it runs.
	Roll    bool `json:"roll,omitempty"`
	Workers int  `json:"workers,omitempty"`
	// Slots (batch): the new master's slots whose workers are ready, 1-based.
	Slots []int `json:"slots,omitempty"`
}

func sendMsg(conn *net.UnixConn, msg handoffMsg) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(handoffTimeout))
	_, err = conn.Write(b)
	return err
}

func readMsg(conn *net.UnixConn) (handoffMsg, error) {
	var msg handoffMsg
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	if err != nil {
		return msg, err
	}
	if err := json.Unmarshal(buf[:n], &msg); err != nil {
		return msg, fmt.Errorf("handoff: bad message: %w", err)
	}
	return msg, nil
}

// connLink is a link over the hand-over socket. Messages are small and the socket is
// SOCK_SEQPACKET, so a send does not wait unless the peer stopped reading for good
// (handoffTimeout bounds that).
type connLink struct{ conn *net.UnixConn }

func (l connLink) send(msg handoffMsg) error { return sendMsg(l.conn, msg) }
func (l connLink) close()                    { l.conn.Close() }

// parent is a new master's link to the old master, until commit.
type parent struct {
	link       link
	roll       bool          // the old master retires its workers slot by slot (hello)
	oldWorkers int           // the old master's workers (hello)
	conn       *net.UnixConn // osSystem's; nil in tests
	oldPID     int           // the old master's pid, as its hello said
	gone       bool          // the old master went away without a commit
	goneAt     time.Time
}

// joinOldMaster is N's side of the handshake: it takes the socket named by fdEnv, reads
// hello and the listeners.
func joinOldMaster(fdEnv string) (*parent, handoffMsg, []*fdstore.Listener, error) {
	var hello handoffMsg
	fd, err := strconv.Atoi(fdEnv)
	if err != nil || fd < 3 {
		return nil, hello, nil, fmt.Errorf("handoff: bad %s=%q", upgradeFDEnv, fdEnv)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "handoff")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, hello, nil, fmt.Errorf("handoff: %w", err)
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, hello, nil, fmt.Errorf("handoff: fd %d is not a unix socket", fd)
	}
	conn.SetReadDeadline(time.Now().Add(handoffTimeout))
	hello, err = readMsg(conn)
	if err == nil && hello.Type != "hello" {
		err = fmt.Errorf("handoff: expected hello, got %q", hello.Type)
	}
	var ls []*fdstore.Listener
	if err == nil {
		ls, err = fdstore.Receive(conn)
	}
	if err != nil {
		conn.Close()
		return nil, hello, nil, fmt.Errorf("handoff from the old master: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	return &parent{link: connLink{conn}, conn: conn, oldPID: hello.OldPID, roll: hello.Roll, oldWorkers: hello.Workers}, hello, ls, nil
}

// read waits for the old master's commit, or for it to go away, and posts either.
func (p *parent) read(m *Master) {
	for {
		msg, err := readMsg(p.conn)
		if err != nil {
			m.post(oldMasterGone{p})
			return
		}
		m.post(oldMasterMsg{p, msg})
	}
}

func (m *Master) onOldMasterMsg(p *parent, msg handoffMsg) {
	if m.parent != p {
		return
	}
	switch msg.Type {
	case "go":
		m.upRollGo()
	case "committing":
		// The soak is over (or the operator committed): the old workers drain, and from now
		// on a worker that exits is restarted rather than a reason to roll back.
		if m.probation != nil {
			m.log.Info("the old master commits: probation over", "pool", m.probation.pool.id)
			m.endProbation(m.probation)
			m.probation = nil
		}
	case "commit":
		m.metrics.counts.Add(msg.Metrics)
		m.takeCharge(true)
	}
}

// onOldMasterGone: the old master went away without committing (it died, or was killed).
// Under systemd, the units' PIDFile= names this master, and systemd makes it main when it
// reaps the old one; until then systemd refuses what this master would say, so it waits
// for that (off the loop) before it takes charge.
func (m *Master) onOldMasterGone(p *parent) {
	if m.parent != p || p.gone {
		return
	}
	p.gone, p.goneAt = true, m.sys.now()
	if m.sd == nil || m.opts.WaitMainPID == nil || m.role == roleStopping {
		m.takeCharge(false)
		return
	}
	m.log.Warn("the old master went away before it committed the upgrade; waiting for systemd to make this master main")
	m.sys.waitMain(p)
}

func (m *Master) onBecameMain(ev becameMain) {
	if m.parent != ev.p {
		return
	}
	if ev.err != nil {
		m.log.Error("the old master went away before it committed the upgrade, and systemd did not make this master its main process: it will stop the service (is the unit's PIDFile= this master's pid file?)", "main_pid", ev.mainPID, "err", ev.err)
	} else {
		m.log.Info("systemd made this master its main process", "took", m.sys.now().Sub(ev.p.goneAt).Round(time.Millisecond))
	}
	m.takeCharge(false)
}

// takeCharge is a new master becoming the service's main process, when the old master
// committed the upgrade (committed) or went away without doing so: it tells systemd what the
// old master used to, keeps its own sockets in the FD store (and drops from it those its
// config dropped), and serves the control socket.
func (m *Master) takeCharge(committed bool) {
	m.parent.link.close()
	if !committed && m.cfg.PIDFile != "" {
		// The old master would have removed its .oldbin as it exited; it died instead.
		m.sys.removePID(m.cfg.PIDFile+OldbinSuffix, m.parent.oldPID)
	}
	oldPID := m.parent.oldPID
	m.parent = nil
	m.endProbation(m.probation) // nothing to roll back to any more
	m.probation = nil
	m.finishRollUp() // a rolling start not finished: every slot starts now
	disarm(m.progress.timer)
	m.progress.timer = nil
	if committed {
		m.record("upgrade", "ok", fmt.Sprintf("old master %d retired", oldPID), m.startedAt)
		m.log.Info("upgrade committed: this master is in charge")
	} else {
		m.record("upgrade", "ok", fmt.Sprintf("old master %d went away before it committed", oldPID), m.startedAt)
		m.log.Warn("the old master went away before it committed the upgrade; this master is in charge", "event", "took-charge")
	}
	switch m.role {
	case roleAwaitingCommit:
		m.become(roleServing, "in charge")
	case roleJoining:
		m.become(roleStarting, "in charge before ready")
		if m.readyOnce { // its workers were ready; the health check had not passed yet
			m.become(roleServing, "in charge, workers ready")
		}
	case roleStopping:
		return // exiting anyway
	}
	if m.readyOnce {
		m.notifyReady()
	}
	if m.watchdog > 0 {
		// systemd's watchdog runs on across a change of main process: a master that took
		// charge pings at once. Waiting for its first tick (WatchdogSec/2) meant that
		// upgrades back to back, each master living less than that, never pinged at all:
		// the benchmark's 100 upgrades under systemd on a slow day ended in SIGABRT.
		m.watchdogPing()
	}
	m.sentStatus = ""
	m.storeListeners(m.listeners)
	for _, l := range m.dropped {
		m.log.Info("listener closed: no longer in the config", "name", l.Name, "address", l.Addr)
	}
	m.unstoreListeners(m.dropped)
	closeAll(m.dropped)
	m.dropped = nil
	m.serveControl()
	m.syncControl() // the config may name other paths than the old master's
	m.syncMetrics()
}

// failStart is a new master whose first workers failed: it tells the old master why and
// exits, so that the old master rolls back at once instead of waiting for its timeout.
func (m *Master) failStart(reason string) {
	m.log.Error("upgrade failed: new workers did not become ready", "reason", reason)
	m.parent.link.send(handoffMsg{Type: "error", Reason: reason})
	m.exitMsg = reason
	m.exitCode = 1
	if ro := m.uproll; ro != nil && ro.reported > 0 {
		// The old master retired workers for this one's: this one serves on until the old
		// master has them back and asks it to stop (QUIT).
		ro.failed = true
		m.endProbation(m.probation)
		m.probation = nil
		m.log.Warn("serving on until the old master has its workers back", "old_pid", m.parent.oldPID)
		return
	}
	m.fastStop()
}

// progressEvery bounds how often a new master sends its progress: a worker that crashes
// in a loop changes it at every restart.
const progressEvery = 250 * time.Millisecond

// maxSnapshotWorkers bounds the workers a progress message lists (and an old master takes
// from one): at about 200 bytes each, a message stays far below readMsg's 64 KiB.
const maxSnapshotWorkers = 128

// progressState is a new master's record of the progress it sent its old master.
type progressState struct {
	sent  string    // the last snapshot sent, as JSON
	at    time.Time // when
	timer *timer    // tProgress: a change held back by progressEvery
}

// snapshot is this master as a progress message describes it. Ages are left out (the old
// master computes them from the start times), so it changes only when something happens.
func (m *Master) snapshot() MasterSnapshot {
	n := MasterSnapshot{
		PID: m.pid, Generation: m.gen, State: m.role.String(), Version: m.opts.Version,
		Exe: m.opts.Exe, StartedAt: m.startedAt, Wanted: m.cfg.Worker.Count,
	}
	if p := m.current; p != nil {
		n.Ready, n.Wanted = p.readyCount(), len(p.workers)
	}
	if m.probation != nil {
		n.Probation = m.probation.describe()
	}
	for _, w := range m.workerStatus(time.Time{}) {
		if len(n.Workers) == maxSnapshotWorkers {
			break
		}
		// Left out, to keep the message below readMsg's bound: a new master's failing
		// worker fails its start, and that says why.
		w.Uptime, w.Failure, w.LastFailure = "", "", ""
		n.Workers = append(n.Workers, w)
	}
	return n
}

// sendProgress tells the old master what changed in this new master, at most every
// progressEvery (a held-back change goes out when tProgress fires). Runs after every
// event; a send that fails costs the old master's view, nothing else.
func (m *Master) sendProgress() {
	if m.parent == nil || m.progress.timer != nil {
		return
	}
	n := m.snapshot()
	b, err := json.Marshal(n)
	if err != nil || string(b) == m.progress.sent {
		return
	}
	now := m.sys.now()
	if wait := progressEvery - now.Sub(m.progress.at); !m.progress.at.IsZero() && wait > 0 {
		m.progress.timer = m.arm(&timer{kind: tProgress, d: wait})
		return
	}
	m.progress.sent, m.progress.at = string(b), now
	if err := m.parent.link.send(handoffMsg{Type: "progress", Progress: &n}); err != nil {
		m.log.Debug("cannot send progress to the old master", "err", err)
	}
}

// maxText bounds each string a new master's progress carries.
const maxText = 200

// validSnapshot checks a new master's progress: it is input from another process. The
// pid is the one this master started; strings are cut short and made printable; counts
// are bounded. It returns false for a snapshot not worth showing.
func validSnapshot(n *MasterSnapshot, pid int) bool {
	if n == nil || n.PID != pid || n.Generation < 1 || n.Ready < 0 || n.Wanted < 0 || n.Ready > n.Wanted {
		return false
	}
	n.State, n.Version, n.Exe, n.Probation = cleanText(n.State), cleanText(n.Version), cleanText(n.Exe), cleanText(n.Probation)
	if len(n.Workers) > maxSnapshotWorkers {
		n.Workers = n.Workers[:maxSnapshotWorkers]
	}
	for i := range n.Workers {
		w := &n.Workers[i]
		w.State, w.Role, w.Status, w.Uptime = cleanText(w.State), cleanText(w.Role), cleanText(w.Status), ""
		w.Failure, w.LastFailure = cleanText(w.Failure), cleanText(w.LastFailure)
		w.Slot, w.PID, w.Pool, w.Failures, w.Restarts = max(w.Slot, 0), max(w.PID, 0), max(w.Pool, 0), max(w.Failures, 0), max(w.Restarts, 0)
	}
	return true
}

// validHistory takes the history an old master handed over (hello): at most historyLen
// entries, strings cut short and printable.
func validHistory(h []HistoryEntry) []HistoryEntry {
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	out := make([]HistoryEntry, 0, len(h))
	for _, e := range h {
		e.Event, e.Result, e.Reason, e.Took = cleanText(e.Event), cleanText(e.Result), clip(e.Reason, maxReason), cleanText(e.Took)
		out = append(out, e)
	}
	return out
}

// maxReason bounds a reason in the history (a config error names a path), so that the
// history a hello carries stays far below readMsg's 64 KiB.
const maxReason = 1024

// cleanText makes s safe to print on one line: control characters become spaces, invalid
// UTF-8 is replaced, and it is cut to maxText bytes.
func cleanText(s string) string { return clip(s, maxText) }

// clip is cleanText with a bound of n bytes.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
