//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/baton-supervisor/baton/supervisor"
)

// printStatus is `baton status` for people (--json prints the reply as it came).
func printStatus(w io.Writer, st *supervisor.Status) {
	role := "in charge"
	if !st.Main {
		role = "new master, upgrade not committed"
	}
	fmt.Fprintf(w, "master pid %d, generation %d (%s), %s\n", st.PID, st.Generation, role, st.State)
	if st.Config != "" {
		fmt.Fprintf(w, "  config     %s\n", st.Config)
	}
	fmt.Fprintf(w, "  status     %s\n", st.Line)
	for _, l := range st.Listeners {
		fmt.Fprintf(w, "  listener   %-12s %s %s (%s)\n", l.Name, l.Network, l.Address, l.Source)
	}
	for _, x := range st.Workers {
		extra := ""
		if x.Failures > 0 {
			extra = fmt.Sprintf(", %d failures in a row", x.Failures)
		}
		if x.Status != "" {
			extra += ", status: " + x.Status
		}
		fmt.Fprintf(w, "  worker %-3d pid %-8d %-9s pool %d %s, up %s%s\n", x.Slot, x.PID, x.State, x.Pool, x.Role, x.Uptime, extra)
	}
	if r := st.Reload; r != nil {
		fmt.Fprintf(w, "  reload     %d/%d new workers ready\n", r.Ready, r.Wanted)
	}
	if u := st.Upgrade; u != nil {
		fmt.Fprintf(w, "  upgrade    new master pid %d %s for %s\n", u.NewPID, u.State, u.Since)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error %s\n", strings.TrimSpace(st.LastError))
	}
}
