//go:build linux

package supervisor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/fdstore"
)

// The control socket: a unix stream socket on which `baton status`, `reload`, `upgrade`
// and `rollback` talk to the master in charge. One JSON request line, one JSON reply
// line. Only root and the user the master runs as get in (SO_PEERCRED).
//
// The socket is handed over with the listeners on an upgrade, so its path never changes
// hands by unlink and bind; only the main master accepts on it: the old master until the
// commit, the new one from then on.

// controlName names the control socket among the listeners passed to a new master.
const controlName = "baton.control"

// ControlRequest is what a client sends.
type ControlRequest struct {
	Verb string `json:"verb"`           // status, reload, upgrade, rollback, stop
	Wait bool   `json:"wait,omitempty"` // reply when the action has finished, not when it started
}

// ControlReply is what the master answers.
type ControlReply struct {
	OK      bool    `json:"ok"`
	Message string  `json:"message,omitempty"`
	Error   string  `json:"error,omitempty"`
	Status  *Status `json:"status,omitempty"`
}

// replyFunc answers one request; it is called once, on the master loop.
type replyFunc func(ControlReply)

// openControl opens the control socket at path, or takes it from the listeners an old
// master handed over (removing it from ls).
func openControl(path string, ls []*fdstore.Listener) (*fdstore.Listener, []*fdstore.Listener, error) {
	for i, l := range ls {
		if l.Name == controlName {
			return l, append(ls[:i:i], ls[i+1:]...), nil
		}
	}
	if path == "" {
		return nil, ls, nil
	}
	spec := fdstore.Spec{Name: controlName, Network: "unix", Address: path, Mode: 0o600}
	if strings.HasPrefix(path, "@") {
		spec.Mode = 0 // an abstract socket has no file mode: peer credentials alone guard it
	}
	l, err := fdstore.Open(spec)
	if err != nil {
		return nil, ls, fmt.Errorf("control socket: %w", err)
	}
	return l, ls, nil
}

// serveControl starts accepting on the control socket, when this master becomes the one
// in charge.
func (m *Master) serveControl() {
	if m.control == nil || m.controlLn != nil {
		return
	}
	ln, err := net.FileListener(m.control.File)
	if err != nil {
		m.log.Error("control socket", "err", err)
		return
	}
	m.controlLn = ln
	m.log.Info("control socket", "address", m.control.Addr)
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

// stopControl stops accepting (the socket itself stays open, for the next master).
func (m *Master) stopControl() {
	if m.controlLn != nil {
		m.controlLn.Close()
	}
}

// controlConn serves one connection, on its own goroutine: it reads the request, posts it
// to the loop, and writes the reply the loop hands back; the loop never writes to a client.
func (m *Master) controlConn(c *net.UnixConn, cfgPath string) {
	defer c.Close()
	replies := make(chan ControlReply, 1)
	reply := func(r ControlReply) {
		select {
		case replies <- r:
		default: // answered already
		}
	}
	write := func(r ControlReply) {
		c.SetWriteDeadline(time.Now().Add(controlTimeout))
		b, _ := json.Marshal(r)
		c.Write(append(b, '\n'))
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
	select {
	case r := <-replies:
		write(r)
	case <-m.done:
		select {
		case r := <-replies: // cleanup answered the waiters
			write(r)
		default:
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

// onControl runs a request on the master loop.
func (m *Master) onControl(req ControlRequest, reply replyFunc, stamp string) {
	m.log.Info("control request", "verb", req.Verb, "wait", req.Wait)
	switch req.Verb {
	case "status":
		st := m.status()
		reply(ControlReply{OK: true, Status: &st})
	case "reload":
		m.controlReload(req, reply, stamp)
	case "upgrade":
		m.controlUpgrade(req, reply)
	case "rollback":
		m.controlRollback(req, reply)
	case "stop":
		m.stopWaiters = append(m.stopWaiters, reply)
		m.gracefulStop()
	default:
		reply(ControlReply{Error: fmt.Sprintf("unknown verb %q", req.Verb)})
	}
}

func (m *Master) controlReload(req ControlRequest, reply replyFunc, stamp string) {
	if err := m.canReload(); err != nil {
		reply(ControlReply{Error: err.Error()})
		return
	}
	if r := m.signalReload; req.Wait && m.reload == nil && r != nil && m.sys.now().Sub(r.at) < claimWindow && r.stamp != "" && r.stamp == stamp {
		// The reload systemd started with SIGHUP (Type=notify-reload) before it ran
		// ExecReload=, of the config file as it is now: that is the reload this client
		// waits for.
		m.signalReload = nil
		reply(r.reply)
		return
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

func (m *Master) controlUpgrade(req ControlRequest, reply replyFunc) {
	if err := m.startUpgrade(); err != nil {
		reply(ControlReply{Error: err.Error()})
		return
	}
	if !req.Wait {
		reply(ControlReply{OK: true, Message: fmt.Sprintf("upgrade started: new master pid %d", m.up.pid)})
		return
	}
	m.up.waiters = append(m.up.waiters, reply)
}

func (m *Master) controlRollback(req ControlRequest, reply replyFunc) {
	up := m.up
	if up == nil || m.role == roleStopping {
		reply(ControlReply{Error: "no upgrade in flight on this master"})
		return
	}
	if m.role == roleHandingOver {
		reply(ControlReply{Error: "too late to roll back: the new master is being made the main process"})
		return
	}
	if req.Wait {
		up.rollbackWaiters = append(up.rollbackWaiters, reply)
	} else {
		reply(ControlReply{OK: true, Message: fmt.Sprintf("rollback started: new master pid %d asked to exit", up.pid)})
	}
	if m.role != roleRollingBack {
		m.rollBack("rolled back on request")
	}
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
