//go:build linux

package supervisor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
)

// The control socket: a unix stream socket on which `baton status`, `reload`, `upgrade`,
// `rollback`, `commit` and `stop` talk to the master in charge. One JSON request line, one
// JSON reply line; a client that waits for the result and asks for progress gets a pending
// line first, with the deadline by which the result is due. Only root and the user the
// master runs as get in (SO_PEERCRED).
//
// The sockets are handed over with the listeners on an upgrade, so a path never changes
// hands by unlink and bind; only the main master accepts on them: the old master until the
// commit, the new one from then on. A reload, or a new master taking charge, moves them to
// the paths the config names now (syncControl).

// controlName names the control socket among the listeners passed to a new master.
const controlName = "baton.control"

// ControlRequest is what a client sends.
type ControlRequest struct {
	Verb string `json:"verb"`           // status, reload, upgrade, rollback, commit, stop
	Wait bool   `json:"wait,omitempty"` // reply when the action has finished, not when it started
	// Progress: the client reads lines until one is not Pending. Only such a client gets a
	// pending line: the package upgrade runs a new `baton` against the old master (and a
	// downgrade the other way round), and a client or master that does not know the field
	// still speaks one request line, one reply line.
	Progress bool `json:"progress,omitempty"`
}

// ControlReply is what the master answers.
type ControlReply struct {
	OK bool `json:"ok"`
	// Pending: not the result yet. The action started (Message says how) and its result
	// comes by Deadline (RFC 3339), the worst case the master computes from its config.
	// Sent at most once, before the result, to a request with Wait and Progress.
	Pending  bool   `json:"pending,omitempty"`
	Deadline string `json:"deadline,omitempty"`
	// InFlight: the last line, yet the action goes on without the client: an upgrade with
	// commit = "manual" whose new master is ready waits for the operator's commit.
	InFlight bool    `json:"in_flight,omitempty"`
	Message  string  `json:"message,omitempty"`
	Error    string  `json:"error,omitempty"`
	Status   *Status `json:"status,omitempty"`
}

// replyFunc answers one request, on the master loop, without blocking: at most one pending
// line, then the result once (later results are dropped).
type replyFunc func(ControlReply)

// ctlSock is one control socket of the master. The master listens on the path its config
// names (control_socket, else $RUNTIME_DIRECTORY/control.sock) and, under systemd's
// RuntimeDirectory= with control_socket set elsewhere, on $RUNTIME_DIRECTORY/control.sock
// too: a place that does not move when someone edits the file, where `baton … -c FILE`
// looks when the path the file names now has no master on it (controlPaths).
type ctlSock struct {
	l  *fdstore.Listener // owned
	ln net.Listener      // accepting on it, while this master is in charge
}

// controlPaths are the control sockets a master with configuration c listens on.
func controlPaths(c *config.Config) []string {
	var ps []string
	if p := c.ControlPath(); p != "" {
		ps = append(ps, p)
	}
	if rt := (&config.Config{}).ControlPath(); rt != "" && !slices.Contains(ps, rt) {
		ps = append(ps, rt)
	}
	return ps
}

func controlSpec(path string) fdstore.Spec {
	spec := fdstore.Spec{Name: controlName, Network: "unix", Address: path, Mode: 0o600}
	if strings.HasPrefix(path, "@") {
		spec.Mode = 0 // an abstract socket has no file mode: peer credentials alone guard it
	}
	return spec
}

// openControl takes the control sockets an old master handed over (removing them from
// ls), whatever their paths: a new master makes them what its config says once it is in
// charge (syncControl). A first master opens paths.
func openControl(paths []string, ls []*fdstore.Listener) ([]*ctlSock, []*fdstore.Listener, error) {
	var cs []*ctlSock
	rest := ls[:0:0]
	for _, l := range ls {
		if l.Name == controlName {
			cs = append(cs, &ctlSock{l: l})
		} else {
			rest = append(rest, l)
		}
	}
	if len(cs) > 0 {
		return cs, rest, nil
	}
	for _, p := range paths {
		l, err := fdstore.Open(controlSpec(p))
		if err != nil {
			closeControls(cs)
			return nil, ls, fmt.Errorf("control socket: %w", err)
		}
		cs = append(cs, &ctlSock{l: l})
	}
	return cs, rest, nil
}

// openMissingControl opens the control sockets of paths this master does not listen on
// yet, and serves them at once when it is in charge. It returns what it opened.
func (m *Master) openMissingControl(paths []string) ([]*ctlSock, error) {
	var opened []*ctlSock
	for _, p := range paths {
		if slices.ContainsFunc(m.controls, func(c *ctlSock) bool { return c.l.Matches(controlSpec(p)) }) {
			continue
		}
		l, err := fdstore.Open(controlSpec(p))
		if err != nil {
			m.closeControl("another one could not be opened", opened...)
			return nil, fmt.Errorf("control socket: %w", err)
		}
		c := &ctlSock{l: l}
		opened = append(opened, c)
		m.controls = append(m.controls, c)
	}
	if m.controlLive {
		m.serveControl()
	}
	return opened, nil
}

// closeControl stops accepting on cs, closes them and removes their socket files (if no
// one else accepts on them: an old master that has not exited yet still holds them).
func (m *Master) closeControl(why string, cs ...*ctlSock) {
	for _, c := range cs {
		m.controls = slices.DeleteFunc(m.controls, func(x *ctlSock) bool { return x == c })
		if c.ln != nil {
			c.ln.Close()
		}
		c.l.Close()
		if c.l.Network == "unix" && strings.HasPrefix(c.l.Addr, "/") {
			if err := fdstore.RemoveStale(c.l.Addr); err != nil {
				m.log.Debug("control socket file left", "address", c.l.Addr, "err", err)
			}
		}
		m.log.Info("control socket closed", "address", c.l.Addr, "why", why)
	}
}

// syncControl makes the control sockets of a master in charge what its config says now:
// `baton reload|stop -c FILE` read the path from the file as it is now. A path that
// cannot be opened is logged; the master serves on the others.
func (m *Master) syncControl() {
	want := controlPaths(m.cfg)
	if _, err := m.openMissingControl(want); err != nil {
		m.log.Error("control socket not moved", "err", err)
	}
	var gone []*ctlSock
	for _, c := range m.controls {
		if !slices.ContainsFunc(want, func(p string) bool { return c.l.Matches(controlSpec(p)) }) {
			gone = append(gone, c)
		}
	}
	m.closeControl("no longer in the config", gone...)
}

func closeControls(cs []*ctlSock) {
	for _, c := range cs {
		if c.ln != nil {
			c.ln.Close()
		}
		c.l.Close()
	}
}

// serveControl accepts on every control socket not accepted on yet; from the moment this
// master is in charge (controlLive) until it stops.
func (m *Master) serveControl() {
	m.controlLive = true
	for _, c := range m.controls {
		if c.ln == nil {
			m.acceptControl(c)
		}
	}
	m.serveMetrics()
}

func (m *Master) acceptControl(cs *ctlSock) {
	ln, err := net.FileListener(cs.l.File)
	if err != nil {
		m.log.Error("control socket", "address", cs.l.Addr, "err", err)
		return
	}
	cs.ln = ln
	m.log.Info("control socket", "address", cs.l.Addr)
	cfgPath := m.cfg.Path // fixed for the master's life
	slots := m.controlSlots
	go func() {
		var pause time.Duration
		var lastLog time.Time
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if !acceptRetry(err) {
					m.log.Error("control socket: no longer accepting", "err", err)
					return
				}
				// Out of fds or memory: the client waits in the backlog; try again soon.
				// This goroutine, not the loop, owns pause and lastLog.
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				if time.Since(lastLog) >= logEvery {
					lastLog = time.Now()
					m.log.Warn("control socket: cannot accept; retrying", "err", err)
				}
				time.Sleep(pause)
				continue
			}
			pause = 0
			select {
			case slots <- struct{}{}:
				go func() {
					defer func() { <-slots }()
					m.controlConn(c.(*net.UnixConn), cfgPath)
				}()
			default:
				c.Close() // as many clients as we serve at once are connected already
			}
		}
	}()
}

// controlFlush bounds how long an exiting master waits for the last replies (to `baton
// stop --wait`, say) to be written.
const controlFlush = 2 * time.Second

// flushControl waits, up to controlFlush, until no control connection is being served.
func (m *Master) flushControl() {
	deadline := time.After(controlFlush)
	for range maxControlConns {
		select {
		case m.controlSlots <- struct{}{}:
		case <-deadline:
			return
		}
	}
}

// maxControlConns bounds the control connections served at once.
const maxControlConns = 32

// controlTimeout bounds how long a client may take to send its request, and to read its
// reply: a client that does neither holds its own goroutine, never the master loop.
const controlTimeout = 10 * time.Second

// stopControl stops accepting (the sockets themselves stay open, for the next master).
func (m *Master) stopControl() {
	m.controlLive = false
	for _, c := range m.controls {
		if c.ln != nil {
			c.ln.Close()
			c.ln = nil
		}
	}
	m.stopMetrics()
}

// controlConn serves one connection, on its own goroutine: it reads the request, posts it
// to the loop, and writes the replies the loop hands back (a pending line, then the
// result); the loop never writes to a client.
func (m *Master) controlConn(c *net.UnixConn, cfgPath string) {
	defer c.Close()
	pending := make(chan ControlReply, 1)
	result := make(chan ControlReply, 1)
	reply := func(r ControlReply) {
		ch := result
		if r.Pending {
			ch = pending
		}
		select {
		case ch <- r:
		default: // answered already
		}
	}
	write := func(r ControlReply) error {
		c.SetWriteDeadline(time.Now().Add(controlTimeout))
		b, _ := json.Marshal(r)
		_, err := c.Write(append(b, '\n'))
		return err
	}
	if err := checkPeer(c); err != nil {
		write(ControlReply{Error: err.Error()})
		m.post(refusedControl{err})
		return
	}
	c.SetReadDeadline(time.Now().Add(controlTimeout))
	line, err := bufio.NewReaderSize(c, 4096).ReadSlice('\n')
	var req ControlRequest
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		write(ControlReply{Error: "bad request: " + err.Error()})
		return
	}
	ev := controlEvent{req: req, reply: reply}
	if req.Verb == "reload" && req.Wait {
		ev.stamp = configStamp(cfgPath)
	}
	m.post(ev)
	for {
		select {
		case r := <-pending:
			// A result posted meanwhile may be taken first: the pending line is then
			// never written, which a client reading until a result does not mind.
			if write(r) != nil {
				return // the client went away; the action goes on
			}
		case r := <-result:
			write(r)
			return
		case <-m.done:
			select {
			case r := <-result: // cleanup answered the waiters
				write(r)
			default:
			}
			return
		}
	}
}

// refusedControl: a connection from a user who may not control this master.
type refusedControl struct{ err error }

func (refusedControl) eventName() string { return "control-refused" }

// checkPeer lets in root and the user this master runs as.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil {
		return os.NewSyscallError("getsockopt SO_PEERCRED", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("permission denied: uid %d may not control this master", cred.Uid)
	}
	return nil
}

// configStamp identifies the config file's content as the file system sees it (inode,
// size, modification time), or "" when there is no file to look at.
func configStamp(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return ""
	}
	return fmt.Sprintf("%d:%d:%d:%d", st.Dev, st.Ino, st.Size, fi.ModTime().UnixNano())
}

// onControl runs a request on the master loop. A waited-for request that started an
// action and is not answered yet gets a pending line, if the client asked for progress.
func (m *Master) onControl(req ControlRequest, reply replyFunc, stamp string) {
	m.log.Info("control request", "verb", req.Verb, "wait", req.Wait)
	answered := false
	result := func(r ControlReply) {
		answered = true
		reply(r)
	}
	var started string // what a waited-for request started, for its pending line
	switch req.Verb {
	case "status":
		st := m.status()
		result(ControlReply{OK: true, Status: &st})
	case "reload":
		started = m.controlReload(req, result, stamp)
	case "upgrade":
		started = m.controlUpgrade(req, result)
	case "rollback":
		started = m.controlRollback(req, result)
	case "commit":
		started = m.controlCommit(req, result)
	case "stop":
		m.stopWaiters = append(m.stopWaiters, result)
		m.gracefulStop()
		started = "graceful stop: workers drain"
	default:
		result(ControlReply{Error: fmt.Sprintf("unknown verb %q", req.Verb)})
	}
	if req.Wait && req.Progress && !answered && started != "" {
		deadline := m.sys.now().Add(m.waitBound(req.Verb)).UTC().Truncate(time.Second).Add(time.Second)
		reply(ControlReply{OK: true, Pending: true, Message: started, Deadline: deadline.Format(time.RFC3339)})
	}
}

// waitMargin is added to every bound waitBound computes: the steps between the timers
// (a config read, messages between the masters, reaping) take time too.
const waitMargin = 5 * time.Second

// handOverBound bounds the hand-over to systemd (handOver): the barrier, then, if it fails,
// the question which process systemd takes for the main one.
const handOverBound = 10 * time.Second

// waitBound is the longest a waited-for request of verb can take, from this master's
// config: the timers that end every step of it, each at its worst, plus waitMargin. A
// client that was told the resulting deadline waits that long, not a fixed time.
func (m *Master) waitBound(verb string) time.Duration {
	w, u := m.cfg.Worker, m.cfg.Upgrade
	// A new master asked to exit (rollback, stop) gets stop_timeout to drain its workers
	// (never paced: retireGracefully), then SIGKILL after newMasterGrace.
	backOut := w.StopTimeout + newMasterGrace
	switch verb {
	case "upgrade", "commit":
		// The new master is ready within upgrade.timeout (else TERM, and SIGKILL after
		// newMasterGrace); then the soak (auto commit), the old workers' drain (their stop
		// signals spread over stop_spread, SIGKILL at stop_timeout after each), the
		// hand-over; and a hand-over systemd refuses rolls back.
		soak := u.Soak
		if u.Commit != config.CommitAuto {
			soak = 0 // the wait ends when the new master is ready, or at a commit asked for
		}
		return max(u.Timeout, newMasterGrace) + soak + drainBound(w) + handOverBound + backOut + rollBound(m.cfg) + waitMargin
	case "rollback":
		return backOut + waitMargin
	case "reload":
		// The config is read (host names looked up), then every new worker is ready
		// within start_timeout, or the one that is not is stopped (stop_timeout) and the
		// reload fails. A new config with a longer start_timeout, or new workers that
		// push their start deadline back (EXTEND_TIMEOUT_USEC=, up to maxStartStretch
		// start timeouts), can take longer: the client then hears that the reload is
		// still in flight, which is true.
		// Then the trial (reload.soak, the health check) before the old workers retire.
		return lookupTimeout + w.StartTimeout + w.StopTimeout + probationBound(m.cfg, true) + waitMargin
	case "stop":
		// The workers drain (stop_spread, then SIGKILL at stop_timeout) while a new master
		// not committed backs out; then the last replies are written.
		return max(drainBound(w), backOut) + controlFlush + waitMargin
	}
	return waitMargin
}

func (m *Master) controlReload(req ControlRequest, reply replyFunc, stamp string) (started string) {
	if err := m.canReload(); err != nil {
		reply(ControlReply{Error: err.Error()})
		return ""
	}
	if r := m.signalReload; req.Wait && m.reload == nil && r != nil && m.sys.now().Sub(r.at) < claimWindow && r.stamp != "" && r.stamp == stamp {
		// The reload systemd started with SIGHUP (Type=notify-reload) before it ran
		// ExecReload=, of the config file as it is now: that is the reload this client
		// waits for.
		m.signalReload = nil
		reply(r.reply)
		return ""
	}
	if req.Wait {
		m.reloadWaiters = append(m.reloadWaiters, reply)
	}
	if m.reload == nil {
		m.startReload(false)
	}
	if !req.Wait {
		reply(ControlReply{OK: true, Message: "reload started"})
	}
	return "reload started"
}

// claimWindow is how long the result of a reload started by SIGHUP, and waited for by no
// client, stays there for the next `baton reload --wait`. Under Type=notify-reload systemd
// sends SIGHUP and then runs ExecReload=, whose `baton reload --wait` may reach the master
// after that reload ended: it takes that reload's result rather than starting another, if
// the config file did not change since that reload read it.
const claimWindow = 5 * time.Second

// finishedReload is a reload started by SIGHUP that no client has heard about yet.
type finishedReload struct {
	at    time.Time
	stamp string
	reply ControlReply
}

// answerReload tells every client waiting on the reload r how it ended.
func (m *Master) answerReload(r *reload, err error) {
	reply := ControlReply{OK: true, Message: "reload complete: " + m.statusLine()}
	if err != nil {
		reply = ControlReply{Error: err.Error()}
	}
	m.signalReload = nil
	if r != nil && r.bySignal && len(m.reloadWaiters) == 0 {
		m.signalReload = &finishedReload{at: m.sys.now(), stamp: r.stamp, reply: reply}
	}
	for _, w := range m.reloadWaiters {
		w(reply)
	}
	m.reloadWaiters = nil
}

func (m *Master) controlUpgrade(req ControlRequest, reply replyFunc) (started string) {
	if err := m.startUpgrade(); err != nil {
		reply(ControlReply{Error: err.Error()})
		return ""
	}
	started = fmt.Sprintf("upgrade started: new master pid %d", m.up.pid)
	if !req.Wait {
		reply(ControlReply{OK: true, Message: started})
		return started
	}
	m.up.waiters = append(m.up.waiters, reply)
	return started
}

func (m *Master) controlRollback(req ControlRequest, reply replyFunc) (started string) {
	up := m.up
	if up == nil || m.role == roleStopping {
		reply(ControlReply{Error: "no upgrade in flight on this master"})
		return ""
	}
	if m.role == roleHandingOver {
		reply(ControlReply{Error: "too late to roll back: the new master is being made the main process"})
		return ""
	}
	started = fmt.Sprintf("rollback started: new master pid %d asked to exit", up.pid)
	if req.Wait {
		up.rollbackWaiters = append(up.rollbackWaiters, reply)
	} else {
		reply(ControlReply{OK: true, Message: started})
	}
	if m.role != roleRollingBack {
		m.rollBack("rolled back on request")
	}
	return started
}

// controlCommit is `baton commit`: QUIT to the old master during an upgrade (requestCommit),
// said on purpose, so systemd is not asked whether the unit is stopping. With Wait the
// client hears when the upgrade is committed, or rolled back after all.
func (m *Master) controlCommit(req ControlRequest, reply replyFunc) (started string) {
	up := m.up
	switch {
	case m.role == roleStopping || m.role == roleExited:
		reply(ControlReply{Error: "commit refused: the master is stopping"})
		return ""
	case up == nil:
		reply(ControlReply{Error: "commit refused: no upgrade in flight on this master"})
		return ""
	case m.role == roleCommitting || m.role == roleHandingOver:
		reply(ControlReply{Error: fmt.Sprintf("commit refused: the upgrade to new master pid %d is being committed already (`baton status` shows when it is done)", up.pid)})
		return ""
	case m.role == roleRollingBack:
		reply(ControlReply{Error: fmt.Sprintf("commit refused: the upgrade to new master pid %d is being rolled back", up.pid)})
		return ""
	case m.role == roleUpgrading:
		started = fmt.Sprintf("commit requested: new master pid %d is not ready yet; it is committed once it is, unless not ready within %s", up.pid, m.cfg.Upgrade.Timeout)
	default:
		started = fmt.Sprintf("commit started: the old workers drain, then new master pid %d takes charge", up.pid)
	}
	if req.Wait {
		up.waiters = append(up.waiters, reply)
	} else {
		reply(ControlReply{OK: true, Message: started})
	}
	m.requestCommit()
	return started
}

// answer tells every client waiting on the upgrade how it ended: committed (err nil) or
// rolled back.
func (up *upgrade) answer(err error) {
	commit := ControlReply{OK: true, Message: fmt.Sprintf("upgrade committed: new master pid %d is in charge", up.pid)}
	rollback := ControlReply{Error: fmt.Sprintf("the upgrade was not rolled back: new master pid %d is in charge", up.pid)}
	if err != nil {
		commit = ControlReply{Error: err.Error()}
		rollback = ControlReply{OK: true, Message: "rolled back: " + err.Error()}
	}
	for _, reply := range up.waiters {
		reply(commit)
	}
	for _, reply := range up.rollbackWaiters {
		reply(rollback)
	}
	up.waiters, up.rollbackWaiters = nil, nil
}

// awaitOperator ends the wait of the clients waiting on a manual-commit upgrade whose new
// master is ready: from here on it is the operator's call. The upgrade goes on.
func (up *upgrade) awaitOperator() {
	r := ControlReply{OK: true, InFlight: true, Message: fmt.Sprintf("new master %d ready; it waits for you: `baton commit` commits, `baton rollback` rolls back", up.pid)}
	for _, reply := range up.waiters {
		reply(r)
	}
	up.waiters = nil
}

// acceptRetry reports whether an accept failed for want of a resource that may come back
// (file descriptors, memory) or for a client that gave up, rather than for good.
func acceptRetry(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
