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

// isMain reports whether this master is the service's main process: not a new master
// before its commit, not an old master after it handed over.
func (m *Master) isMain() bool {
	return m.parent == nil && (m.up == nil || m.up.state != upHandedOver)
}

// notifySystemd sends one datagram to systemd, if there is one and this master is main.
func (m *Master) notifySystemd(state ...string) {
	if m.sd == nil || !m.isMain() {
		return
	}
	if err := m.sd.Notify(state...); err != nil {
		m.log.Warn("sd_notify failed", "err", err, "state", strings.Join(state, " "))
	}
}

// statusLine is the one honest line systemctl status shows: generation, workers ready of
// wanted, what is in flight, the last error.
func (m *Master) statusLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d: ", m.gen)
	switch p := m.current; {
	case m.stopping != running:
		b.WriteString("stopping")
	case p == nil:
		b.WriteString("no workers (WINCH)")
	default:
		fmt.Fprintf(&b, "%d/%d workers ready", p.readyCount(), len(p.workers))
	}
	if r := m.reload; r != nil {
		fmt.Fprintf(&b, "; reloading (%d/%d new workers ready)", r.pool.readyCount(), len(r.pool.workers))
	}
	if up := m.up; up != nil {
		fmt.Fprintf(&b, "; upgrade to pid %d %s", up.pid, up.state)
	}
	if m.parent != nil {
		b.WriteString("; new master, upgrade not committed")
	}
	if m.lastErr != "" {
		b.WriteString("; last error: " + m.lastErr)
	}
	return b.String()
}

// updateStatus sends STATUS= when the line changed.
func (m *Master) updateStatus() {
	if s := m.statusLine(); s != m.sentStatus && m.sd != nil && m.isMain() {
		m.sentStatus = s
		m.notifySystemd(sdnotify.Status(s))
	}
}

// storeListeners puts the sockets baton opened itself into systemd's FD store, so that a
// crash or a restart loses none of them (socket-unit fds are systemd's already).
// Pushing a socket that is stored already does not duplicate it (FACTS §c).
func (m *Master) storeListeners(ls []*fdstore.Listener) {
	if m.sd == nil || !m.isMain() || os.Getenv("FDSTORE") == "0" {
		return
	}
	for _, l := range ls {
		if l.Source != fdstore.Opened {
			continue
		}
		name, err := sdnotify.FDName(storePrefix + l.Name)
		if err == nil {
			err = m.sd.NotifyWithFiles([]*os.File{l.File}, sdnotify.FDStore, name, sdnotify.FDPollOff)
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
// opened itself, under their own names.
func fromStore(ls []*fdstore.Listener) {
	for _, l := range ls {
		if name, ok := strings.CutPrefix(l.Name, storePrefix); ok && name != "" {
			l.Name, l.Source = name, fdstore.Opened
		}
	}
}

// handOver names N systemd's main process, and waits until systemd has processed it
// (BARRIER=1), so that this master's exit is not taken for the service's.
func (m *Master) handOver(up *upgrade) error {
	if m.sd == nil {
		return nil
	}
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
		err = m.sd.NotifyWithFDs([]int{up.pidfd}, sdnotify.MainPID(up.pid), "MAINPIDFD=1")
	} else {
		err = m.sd.Notify(sdnotify.MainPID(up.pid))
	}
	m.log.Info("main process handed to the new master", "new_pid", up.pid, "systemd", version, "by_pidfd", version >= 257)
	if err != nil {
		return fmt.Errorf("sd_notify MAINPID=%d: %w", up.pid, err)
	}
	if err := m.sd.Barrier(5 * time.Second); err != nil {
		return fmt.Errorf("sd_notify barrier after MAINPID=%d: %w", up.pid, err)
	}
	return nil
}

// watchdogLoop pings systemd's watchdog through the master loop: a wedged loop stops the
// pings, and systemd kills and restarts the service.
func (m *Master) watchdogLoop(interval time.Duration) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.post(m.watchdogPing)
		case <-m.done:
			return
		}
	}
}

// watchdogPing is WATCHDOG=1, sent only while the workers are alive: a pool whose every
// slot is crash-looping is not healthy.
func (m *Master) watchdogPing() {
	if p := m.current; p != nil && p.ready {
		loop := 0
		for _, n := range p.failures {
			if n >= crashLoop {
				loop++
			}
		}
		if loop == len(p.failures) {
			return
		}
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
