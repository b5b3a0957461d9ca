//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
)

// systemdVersion asks the service manager for its version over D-Bus (systemd's private
// socket, else the system bus), once; 0 when it cannot tell. The supervisor uses it to
// name the new master by pidfd (MAINPIDFD=) only where systemd accepts it.
var systemdVersion = sync.OnceValue(func() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := systemdConn(ctx)
	if err != nil {
		return 0
	}
	defer conn.Close()
	v, err := conn.GetManagerProperty("Version")
	if err != nil {
		return 0
	}
	return parseSystemdVersion(v)
})

// parseSystemdVersion reads the major version from systemd's Version property as
// GetManagerProperty renders it: `"252.39-1~deb12u2"`, `"257.13-1~deb13u1"`.
func parseSystemdVersion(v string) int {
	v = strings.Trim(v, `"`)
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

// systemdConn connects to systemd's private socket, else to the system bus.
func systemdConn(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		conn, err = dbus.NewSystemConnectionContext(ctx)
	}
	return conn, err
}

// systemdMainPID asks systemd which process it takes for the main one of the service pid
// belongs to (0 and an error when it cannot tell). Used only when a hand-over could not be
// confirmed, to know whether the old master may exit.
func systemdMainPID(pid int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return waitMainPID(ctx, pid, 0)
}

// waitMainPID asks systemd for the MainPID of the unit pid runs in, until it is want (or
// at once, want 0), polling every 20 ms until ctx ends; it returns the last MainPID seen. A
// new master whose old master died before the commit waits so: systemd makes it main when
// it reaps the old master and reads the unit's PIDFile= (units/README.md, "kill -9 of the
// old master").
func waitMainPID(ctx context.Context, pid, want int) (int, error) {
	conn, err := systemdConn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	unit, err := conn.GetUnitNameByPID(ctx, uint32(pid))
	if err != nil {
		return 0, err
	}
	last := 0
	for {
		p, err := conn.GetServicePropertyContext(ctx, unit, "MainPID")
		if err != nil {
			return last, fmt.Errorf("%s MainPID: %w", unit, err)
		}
		v, ok := p.Value.Value().(uint32)
		if !ok {
			return last, fmt.Errorf("%s MainPID: unexpected %s", unit, p.Value)
		}
		last = int(v)
		if want == 0 || last == want {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s: MainPID is %d, not %d: %w", unit, last, want, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitMain is Options.WaitMainPID: until systemd names pid its unit's main process.
func waitMain(ctx context.Context, pid int) (int, error) { return waitMainPID(ctx, pid, pid) }

// unitStopping is Options.UnitStopping: whether systemd is stopping the unit pid runs in
// (ActiveState "deactivating": ExecStop=, the KillSignal= after it, a restart).
func unitStopping(ctx context.Context, pid int) (bool, error) {
	conn, err := systemdConn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	unit, err := conn.GetUnitNameByPID(ctx, uint32(pid))
	if err != nil {
		return false, err
	}
	p, err := conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return false, fmt.Errorf("%s ActiveState: %w", unit, err)
	}
	state, ok := p.Value.Value().(string)
	if !ok {
		return false, fmt.Errorf("%s ActiveState: unexpected %s", unit, p.Value)
	}
	return state == "deactivating", nil
}
