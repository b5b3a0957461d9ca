//go:build linux

package main

import (
	"context"
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
	conn, err := dbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		if conn, err = dbus.NewSystemConnectionContext(ctx); err != nil {
			return 0
		}
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
