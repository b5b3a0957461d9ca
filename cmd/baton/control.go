//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/supervisor"
)

// control runs a control verb (status, reload, upgrade, rollback, stop) against the
// control socket of the master in charge. Exit status: 0 done, 1 the master said no (or the
// action failed), 2 bad usage, 3 no master to talk to — except for stop, for which no
// master is success (ExecStop= also runs after the master exited by itself).
func control(verb string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "configuration `file` (its control_socket, or $RUNTIME_DIRECTORY/control.sock)")
	socket := fs.String("socket", "", "control socket `path` (instead of -c)")
	wait := fs.Bool("wait", false, "return when the action has finished, with its result")
	timeout := fs.Duration("timeout", 90*time.Second, "give up waiting after this `long`")
	asJSON := fs.Bool("json", false, "print the master's reply as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := *socket
	if path == "" {
		var err error
		if path, err = controlPath(*file); err != nil {
			fmt.Fprintf(stderr, "baton %s: %v\n", verb, err)
			return 2
		}
	}
	reply, err := ask(path, supervisor.ControlRequest{Verb: verb, Wait: *wait}, *timeout)
	if err != nil && verb == "stop" && errors.Is(err, errNoMaster) {
		fmt.Fprintf(stdout, "baton stop: no master runs (%v)\n", err)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton %s: %v\n", verb, err)
		return 3
	}
	if *asJSON {
		b, _ := json.MarshalIndent(reply, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else if reply.Status != nil {
		printStatus(stdout, reply.Status)
	} else if reply.OK {
		fmt.Fprintf(stdout, "baton %s: %s\n", verb, reply.Message)
	}
	if !reply.OK {
		fmt.Fprintf(stderr, "baton %s: %s\n", verb, reply.Error)
		return 1
	}
	return 0
}

// controlPath finds the control socket from a config file without judging the rest of
// it: a reload must reach the master, and hear from it, even when the file is broken.
func controlPath(file string) (string, error) {
	c := config.Default()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		if m := controlLine.FindSubmatch(b); m != nil {
			c.ControlSocket = string(m[1])
			if !filepath.IsAbs(c.ControlSocket) && !strings.HasPrefix(c.ControlSocket, "@") {
				abs, _ := filepath.Abs(file)
				c.ControlSocket = filepath.Join(filepath.Dir(abs), c.ControlSocket)
			}
		}
	}
	if p := c.ControlPath(); p != "" {
		return p, nil
	}
	// From a shell, for an instance of the shipped units: baton@web.service reads
	// /etc/baton/web.toml and has RuntimeDirectory=baton/web.
	if file != "" {
		p := filepath.Join("/run/baton", strings.TrimSuffix(filepath.Base(file), ".toml"), "control.sock")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no control socket: give --socket, or -c FILE with control_socket set, or run under systemd with RuntimeDirectory=")
}

// controlLine finds a top-level control_socket = "…" line, even in a file that does not
// parse any more.
var controlLine = regexp.MustCompile(`(?m)^[ \t]*control_socket[ \t]*=[ \t]*"([^"\n]+)"`)

var errNoMaster = errors.New("no master answers")

// ask sends one request and reads one reply.
func ask(path string, req supervisor.ControlRequest, timeout time.Duration) (supervisor.ControlReply, error) {
	var reply supervisor.ControlReply
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return reply, fmt.Errorf("%w on %s: %w", errNoMaster, path, err)
	}
	if err != nil {
		return reply, fmt.Errorf("cannot reach the master on %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, _ := json.Marshal(req)
	_, werr := c.Write(append(b, '\n'))
	// Read even when the write failed: a master that turns us away answers, then closes
	// before it reads anything.
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if werr != nil {
			return reply, werr
		}
		return reply, fmt.Errorf("no reply from the master: %w", err)
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return reply, fmt.Errorf("bad reply from the master: %w", err)
	}
	return reply, nil
}

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
