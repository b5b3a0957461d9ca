//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/fdstore"
	"github.com/baton-supervisor/baton/sdnotify"
)

// What a master tells systemd, and when. A master speaks to systemd only while it is the
// service's main process: the first generation from the start, a new master only once the
// old one has handed MAINPID over (before that systemd would refuse it, FACTS §b).

// storePrefix marks, in systemd's FD store, the sockets baton opened itself, so that they
// can be told apart from socket-unit fds when both come back in LISTEN_FDS.
const storePrefix = "baton/"

// notifySystemd sends one datagram to systemd, if there is one and this master is in
// charge.
func (m *Master) notifySystemd(state ...string) {
	if m.sd == nil || !m.inCharge() {
		return
	}
	if err := m.sys.notify(nil, state...); err != nil {
		m.log.Warn("sd_notify failed", "err", err, "state", strings.Join(state, " "))
	}
}

// statusLine is the one honest line systemctl status shows: generation, workers ready of
// wanted, what is in flight, the last error.
func (m *Master) statusLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d: ", m.gen)
	switch p := m.current; {
	case m.role == roleStopping:
		b.WriteString("stopping")
	case p == nil && m.role == roleCommitting:
		b.WriteString("old workers draining (commit)")
	case p == nil && m.role == roleHandingOver:
		b.WriteString("old workers gone; handing over to the new master")
	case p == nil && m.role == roleRollingBack:
		b.WriteString("rolling back: starting workers again")
	case p == nil:
		b.WriteString("no workers (WINCH)")
	default:
		fmt.Fprintf(&b, "%d/%d workers ready", p.readyCount(), len(p.workers))
	}
	if r := m.reload; r != nil && r.pool == nil {
		b.WriteString("; reloading (reading the config)")
	} else if r != nil {
		fmt.Fprintf(&b, "; reloading (%d/%d new workers ready)", r.pool.readyCount(), len(r.pool.workers))
	}
	if up := m.up; up != nil {
		fmt.Fprintf(&b, "; upgrade to pid %d %s", up.pid, m.role)
	}
	if m.parent != nil {
		b.WriteString("; new master, upgrade not committed")
	}
	if m.lastErr != "" {
		b.WriteString("; last error: " + m.lastErr)
	}
	return b.String()
}

// setLastErr sets (or, with "", clears) the error the status line and baton status show
// until a later success; slot names the crash-looping slot whose recovery clears it.
func (m *Master) setLastErr(s string, slot int) {
	m.lastErr, m.lastErrSlot = s, slot
}

// notifyReady sends READY=1 with the status line (which updateStatus then need not send
// again: each STATUS= is a D-Bus PropertiesChanged of PID 1's).
func (m *Master) notifyReady() {
	s := m.statusLine()
	m.notifySystemd(sdnotify.Ready, sdnotify.Status(s))
	if m.sd != nil && m.inCharge() {
		m.sentStatus = s
	}
}

// updateStatus sends STATUS= when the line changed.
func (m *Master) updateStatus() {
	if s := m.statusLine(); s != m.sentStatus && m.sd != nil && m.inCharge() {
		m.sentStatus = s
		m.notifySystemd(sdnotify.Status(s))
	}
}

// storeListeners puts the sockets baton opened itself into systemd's FD store, so that a
// crash or a restart loses none of them (socket-unit fds are systemd's already).
// Pushing a socket that is stored already does not duplicate it (FACTS §c).
func (m *Master) storeListeners(ls []*fdstore.Listener) {
	if m.sd == nil || !m.inCharge() || os.Getenv("FDSTORE") == "0" {
		return
	}
	for _, l := range ls {
		if l.Source != fdstore.Opened {
			continue
		}
		name, err := sdnotify.FDName(storePrefix + l.Name)
		if err == nil {
			err = m.sys.notify([]*os.File{l.File}, sdnotify.FDStore, name, sdnotify.FDPollOff)
		}
		if err != nil {
			m.log.Warn("cannot keep a listener in the FD store", "name", l.Name, "err", err)
		}
	}
}

// unstoreListeners removes from the FD store the sockets a reload dropped.
func (m *Master) unstoreListeners(ls []*fdstore.Listener) {
	for _, l := range ls {
		if l.Source == fdstore.Opened {
			if name, err := sdnotify.FDName(storePrefix + l.Name); err == nil {
				m.notifySystemd(sdnotify.FDStoreRemove, name)
			}
		}
	}
}

// fromStore relabels the fds systemd gave back from its FD store: they are sockets baton
// opened itself, under their own names. It returns them.
func fromStore(ls []*fdstore.Listener) []*fdstore.Listener {
	var stored []*fdstore.Listener
	for _, l := range ls {
		if name, ok := strings.CutPrefix(l.Name, storePrefix); ok && name != "" {
			l.Name, l.Source = name, fdstore.Opened
			stored = append(stored, l)
		}
	}
	return stored
}

// watchdogPing is WATCHDOG=1, sent only while the workers are healthy: a pool whose every
// slot is down and crash-looping is not.
func (m *Master) watchdogPing() {
	if p := m.current; p != nil && p.ready && p.crashLooping() {
		return
	}
	m.notifySystemd(sdnotify.Watchdog)
}

// openNotifier connects to systemd's notify socket, if there is one.
func openNotifier() (*sdnotify.Notifier, error) {
	n, err := sdnotify.New()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return n, err
}

// monotonicNow is CLOCK_MONOTONIC, as MONOTONIC_USEC= wants it.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}
