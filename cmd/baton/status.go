//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// printStatus is `baton status` for people (--json prints the reply as it came). The first
// lines say what the master is doing and, if it waits for something, until when, then the
// last error; then the details, each under a label in the first 14 columns, wrapped at 80.
func printStatus(w io.Writer, st *supervisor.Status) {
	role := st.Role
	if role == "" { // a master from before the field
		role = "in charge"
		if !st.Main {
			role = "new master, upgrade not committed"
		}
	}
	fmt.Fprintf(w, "generation %d %s, %s, pid %d\n", st.Generation, st.State, role, st.PID)
	if st.Step != nil {
		field(w, "now", st.Step.Text)
	}
	if st.LastError != "" {
		field(w, "last error", strings.TrimSpace(st.LastError))
	}
	master := fmt.Sprintf("pid %d, generation %d", st.PID, st.Generation)
	if st.Uptime != "" {
		master += ", up " + st.Uptime
	}
	if !st.StartedAt.IsZero() {
		master += " (since " + st.StartedAt.Local().Format(time.DateTime) + ")"
	}
	field(w, "master", master)
	if st.Version != "" || st.Exe != "" {
		field(w, "binary", strings.TrimSpace(st.Version+" "+st.Exe))
	}
	if st.Config != "" {
		field(w, "config", st.Config)
	}
	field(w, "status", st.Line)
	for _, l := range st.Listeners {
		field(w, "listener", fmt.Sprintf("%-12s %s %s (%s)", l.Name, l.Network, l.Address, l.Source))
	}
	printWorkers(w, "workers", st.Workers)
	if r := st.Reload; r != nil {
		field(w, "reload", fmt.Sprintf("%d of %d new workers ready", r.Ready, r.Wanted))
	}
	if u := st.Upgrade; u != nil {
		field(w, "upgrade", fmt.Sprintf("to new master pid %d, %s for %s", u.NewPID, u.State, u.Since))
		if u.Reason != "" {
			field(w, "", "rolling back: "+u.Reason)
		}
		if n := u.NewMaster; n != nil {
			desc := fmt.Sprintf("pid %d, generation %d, %s, %d of %d workers ready", n.PID, n.Generation, n.State, n.Ready, n.Wanted)
			field(w, "new master", desc)
			if n.Version != "" || n.Exe != "" {
				field(w, "", strings.TrimSpace(n.Version+" "+n.Exe))
			}
			printWorkers(w, "new workers", n.Workers)
		}
	}
	if len(st.History) > 0 {
		field(w, "history", "")
		for _, e := range st.History {
			line := fmt.Sprintf("%s  gen %-3d %-17s %-11s", e.Time.Local().Format(time.DateTime), e.Generation, e.Event, e.Result)
			if e.Took != "" {
				line += " took " + e.Took
			}
			fmt.Fprintf(w, "  %s\n", strings.TrimRight(line, " "))
			if e.Reason != "" {
				field(w, "", e.Reason)
			}
		}
	}
}

// field prints one labelled value, wrapped at 80 columns under itself; an empty label
// continues the block above.
func field(w io.Writer, label, value string) {
	const indent, width = 14, 80
	line := fmt.Sprintf("  %-11s", label)
	if value == "" {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		return
	}
	if indent+len(value) <= width { // as it is: aligned columns stay aligned
		fmt.Fprintln(w, line+" "+value)
		return
	}
	used := indent
	for i, word := range strings.Fields(value) {
		if i > 0 && used+1+len(word) > width {
			fmt.Fprintln(w, line)
			line, used = strings.Repeat(" ", indent-1), indent
		}
		line += " " + word
		used += 1 + len(word)
	}
	fmt.Fprintln(w, line)
}

func printWorkers(w io.Writer, label string, ws []supervisor.WorkerStatus) {
	if len(ws) == 0 {
		field(w, label, "none")
		return
	}
	field(w, label, fmt.Sprintf("%-4s %-8s %-9s %-4s %-16s %-8s %s", "SLOT", "PID", "STATE", "POOL", "ROLE", "UP", "RESTARTS"))
	for _, x := range ws {
		line := fmt.Sprintf("%-4d %-8d %-9s %-4d %-16s %-8s %d", x.Slot, x.PID, x.State, x.Pool, x.Role, x.Uptime, x.Restarts)
		if x.Failures > 0 {
			line += fmt.Sprintf(", %d failures in a row", x.Failures)
		}
		field(w, "", line)
		if x.Status != "" {
			field(w, "", "     status: "+x.Status)
		}
		if x.Failure != "" {
			field(w, "", "     stopping: "+x.Failure)
		}
		if x.LastFailure != "" {
			field(w, "", "     last failure: "+x.LastFailure)
		}
		if x.StopAt != nil {
			field(w, "", "     serving; stop signal in "+max(time.Until(*x.StopAt), 0).Round(time.Second).String()+" (stop_spread)")
		}
	}
}
