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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/supervisor"
	"golang.org/x/sys/unix"
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
	unit := fs.String("unit", "", "systemd service `NAME` (baton@web): its control socket and MainPID through D-Bus (instead of -c)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths := []string{*socket}
	var sd *unitView // --unit: systemd's view of the service
	if *unit != "" {
		var err error
		if sd, paths, err = unitControl(verb, *unit, *file+*socket); err != nil {
			return unitUsage(verb, err, stderr)
		}
	} else if *socket == "" {
		var err error
		if paths, err = controlPaths(*file); err != nil {
			fmt.Fprintf(stderr, "baton %s: %v\n", verb, err)
			return 2
		}
	}
	reply, err := askFirst(paths, supervisor.ControlRequest{Verb: verb, Wait: *wait}, *timeout)
	if err != nil && errors.Is(err, errNoMaster) {
		pid := mainPID()
		if sd != nil {
			pid = sd.mainPID()
		}
		if pid > 0 {
			// systemd says a master runs (ExecStop=, ExecReload= get $MAINPID): its
			// control socket is not where we looked.
			if verb == "stop" {
				return stopByPID(pid, *wait, *timeout, err, stdout, stderr)
			}
			fmt.Fprintf(stderr, "baton %s: %v; yet the service's main process %d runs (MAINPID): is its control socket elsewhere? (give --socket)\n", verb, err, pid)
			return 3
		}
		if verb == "stop" {
			fmt.Fprintf(stdout, "baton stop: no master runs (%v)\n", err)
			return 0
		}
	}
	if err != nil {
		printUnit(stdout, sd, nil)
		fmt.Fprintf(stderr, "baton %s: %v\n", verb, err)
		return 3
	}
	if *asJSON {
		fmt.Fprintln(stdout, jsonUnit(reply, sd))
	} else if reply.Status != nil {
		printStatus(stdout, reply.Status)
		printUnit(stdout, sd, reply.Status)
	} else if reply.OK {
		fmt.Fprintf(stdout, "baton %s: %s\n", verb, reply.Message)
	}
	if !reply.OK {
		fmt.Fprintf(stderr, "baton %s: %s\n", verb, reply.Error)
		return 1
	}
	return 0
}

// controlPaths are the control sockets to try, in order, from a config file read without
// judging the rest of it (a reload must reach the master, and hear from it, even when the
// file is broken): the path the file names now (control_socket, else
// $RUNTIME_DIRECTORY/control.sock), then $RUNTIME_DIRECTORY/control.sock, on which a master
// under systemd also listens when control_socket is elsewhere (a master started before
// someone edited control_socket listens there and on the old path), then, from a shell, the
// shipped units' runtime directory: baton@web.service reads /etc/baton/web.toml and has
// RuntimeDirectory=baton/web.
func controlPaths(file string) ([]string, error) {
	c := config.Default()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if m := controlLine.FindSubmatch(b); m != nil {
			c.ControlSocket = string(m[1])
			if !filepath.IsAbs(c.ControlSocket) && !strings.HasPrefix(c.ControlSocket, "@") {
				abs, _ := filepath.Abs(file)
				c.ControlSocket = filepath.Join(filepath.Dir(abs), c.ControlSocket)
			}
		}
	}
	var ps []string
	add := func(p string) {
		if p != "" && !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	add(c.ControlPath())
	add((&config.Config{}).ControlPath())
	if file != "" {
		p := filepath.Join("/run/baton", strings.TrimSuffix(filepath.Base(file), ".toml"), "control.sock")
		if _, err := os.Stat(p); err == nil {
			add(p)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no control socket: give --socket, or -c FILE with control_socket set, or run under systemd with RuntimeDirectory=")
	}
	return ps, nil
}

// controlLine finds a top-level control_socket = "…" line, even in a file that does not
// parse any more.
var controlLine = regexp.MustCompile(`(?m)^[ \t]*control_socket[ \t]*=[ \t]*"([^"\n]+)"`)

var errNoMaster = errors.New("no master answers")

// askFirst asks on the first of paths a master answers on.
func askFirst(paths []string, req supervisor.ControlRequest, timeout time.Duration) (supervisor.ControlReply, error) {
	var tried []string
	for _, p := range paths {
		reply, err := ask(p, req, timeout)
		var nm *noMaster
		if !errors.As(err, &nm) {
			return reply, err
		}
		tried = append(tried, nm.why())
		if len(paths) == 1 {
			return reply, err
		}
	}
	return supervisor.ControlReply{}, fmt.Errorf("%w on %s", errNoMaster, strings.Join(tried, ", "))
}

// noMaster: nothing accepts on path (no socket file, or a stale one).
type noMaster struct {
	path string
	err  error
}

func (e *noMaster) Error() string { return fmt.Sprintf("%v on %s: %v", errNoMaster, e.path, e.err) }
func (e *noMaster) Unwrap() error { return errNoMaster }

// why is "PATH (connection refused)".
func (e *noMaster) why() string {
	var errno syscall.Errno
	if errors.As(e.err, &errno) {
		return fmt.Sprintf("%s (%v)", e.path, errno)
	}
	return fmt.Sprintf("%s (%v)", e.path, e.err)
}

// mainPID is $MAINPID, which systemd gives ExecStop= and ExecReload= when it knows the
// service's main process, if that process runs; else 0.
func mainPID() int {
	pid, err := strconv.Atoi(os.Getenv("MAINPID"))
	if err != nil || pid <= 1 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return 0
	}
	return pid
}

// stopByPID is `baton stop` when no control socket answers but systemd names the main
// process: SIGQUIT, baton's graceful stop (an old master during an upgrade asks systemd,
// finds the unit stopping, and stops both generations), then, with --wait, until it exits.
func stopByPID(pid int, wait bool, timeout time.Duration, why error, stdout, stderr io.Writer) int {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		fmt.Fprintf(stdout, "baton stop: no master runs (%v)\n", why)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton stop: %v; main process %d: pidfd_open: %v\n", why, pid, err)
		return 3
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGQUIT, nil, 0); err != nil {
		if err == unix.ESRCH {
			fmt.Fprintf(stdout, "baton stop: no master runs (%v)\n", why)
			return 0
		}
		fmt.Fprintf(stderr, "baton stop: %v; main process %d: %v\n", why, pid, err)
		return 3
	}
	fmt.Fprintf(stdout, "baton stop: %v; sent QUIT to the main process %d (MAINPID)\n", why, pid)
	if !wait {
		return 0
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			fmt.Fprintf(stderr, "baton stop: the main process %d still runs after %s\n", pid, timeout)
			return 3
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, time.Second).Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			fmt.Fprintf(stderr, "baton stop: waiting for %d: %v\n", pid, err)
			return 3
		}
		if n > 0 {
			fmt.Fprintf(stdout, "baton stop: the main process %d exited\n", pid)
			return 0
		}
	}
}

// ask sends one request and reads one reply.
func ask(path string, req supervisor.ControlRequest, timeout time.Duration) (supervisor.ControlReply, error) {
	var reply supervisor.ControlReply
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return reply, &noMaster{path, err}
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
