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

// Exit statuses of the control verbs (the README's table, `baton help`).
const (
	exitDone     = 0 // done: the action finished (or, without --wait, started)
	exitFailed   = 1 // the master refused, or the action failed or was rolled back
	exitUsage    = 2 // bad usage
	exitNoMaster = 3 // no master to talk to
	exitInFlight = 4 // the wait ended (--timeout, or a manual commit waits for the operator) while the action goes on
)

// Waits when --timeout is not given. A master that knows progress lines says by when its
// result is due (its own worst case, from its config); the client waits that long plus
// deadlineMargin. From an older master, which answers one line at the end, a waited-for
// result gets fallbackWait; any other reply comes at once, within replyWait.
const (
	deadlineMargin = 10 * time.Second
	fallbackWait   = 10 * time.Minute
	replyWait      = 30 * time.Second
)

// control runs a control verb (status, reload, upgrade, rollback, commit, stop) against the
// control socket of the master in charge and returns its exit status (exitDone …): no
// master is success for stop only (ExecStop= also runs after the master exited by itself).
func control(verb string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "configuration `file` (its control_socket, or $RUNTIME_DIRECTORY/control.sock)")
	socket := fs.String("socket", "", "control socket `path` (instead of -c)")
	wait := fs.Bool("wait", false, "return when the action has finished, with its result")
	timeout := fs.Duration("timeout", 0, "give up waiting after this `long` (0: as long as the master says the action can take)")
	asJSON := fs.Bool("json", false, "print the master's reply as JSON")
	unit := fs.String("unit", "", "systemd service `NAME` (baton@web): its control socket and MainPID through D-Bus (instead of -c)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "baton %s: unexpected argument %q\n", verb, fs.Arg(0))
		return exitUsage
	}
	if *timeout < 0 {
		fmt.Fprintf(stderr, "baton %s: --timeout must not be negative\n", verb)
		return exitUsage
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
			return exitUsage
		}
	}
	req := supervisor.ControlRequest{Verb: verb, Wait: *wait, Progress: *wait}
	progress := func(p supervisor.ControlReply) {
		if *asJSON {
			return
		}
		due := ""
		if d, err := time.Parse(time.RFC3339, p.Deadline); err == nil {
			due = fmt.Sprintf(" (result due within %s)", time.Until(d).Round(time.Second))
		}
		fmt.Fprintf(stdout, "baton %s: %s%s\n", verb, p.Message, due)
	}
	reply, err := askFirst(paths, req, *timeout, progress)
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
			return exitNoMaster
		}
		if verb == "stop" {
			fmt.Fprintf(stdout, "baton stop: no master runs (%v)\n", err)
			return exitDone
		}
	}
	if err != nil {
		printUnit(stdout, sd, nil)
		fmt.Fprintf(stderr, "baton %s: %v\n", verb, err)
		return exitCode(err)
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
	}
	return replyCode(reply)
}

// replyCode is the exit status a reply of the master means.
func replyCode(r supervisor.ControlReply) int {
	switch {
	case !r.OK:
		return exitFailed
	case r.InFlight, r.Pending:
		return exitInFlight
	}
	return exitDone
}

// exitCode is the exit status an error of ask means.
func exitCode(err error) int {
	var still *stillInFlight
	switch {
	case errors.As(err, &still):
		return exitInFlight
	case errors.Is(err, errNoMaster), errors.Is(err, errUnreachable):
		return exitNoMaster
	}
	return exitFailed
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

var (
	errNoMaster    = errors.New("no master answers")
	errUnreachable = errors.New("cannot reach the master")
)

// askFirst asks on the first of paths a master answers on.
func askFirst(paths []string, req supervisor.ControlRequest, timeout time.Duration, progress func(supervisor.ControlReply)) (supervisor.ControlReply, error) {
	var tried []string
	for _, p := range paths {
		reply, err := ask(p, req, timeout, progress)
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
		return exitDone
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton stop: %v; main process %d: pidfd_open: %v\n", why, pid, err)
		return exitNoMaster
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGQUIT, nil, 0); err != nil {
		if err == unix.ESRCH {
			fmt.Fprintf(stdout, "baton stop: no master runs (%v)\n", why)
			return exitDone
		}
		fmt.Fprintf(stderr, "baton stop: %v; main process %d: %v\n", why, pid, err)
		return exitNoMaster
	}
	fmt.Fprintf(stdout, "baton stop: %v; sent QUIT to the main process %d (MAINPID)\n", why, pid)
	if !wait {
		return exitDone
	}
	if timeout == 0 {
		timeout = fallbackWait // systemd's TimeoutStopSec= bounds ExecStop= anyway
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			fmt.Fprintf(stderr, "baton stop: the main process %d still runs after %s: its stop is still in flight\n", pid, timeout)
			return exitInFlight
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, time.Second).Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			fmt.Fprintf(stderr, "baton stop: waiting for %d: %v\n", pid, err)
			return exitFailed
		}
		if n > 0 {
			fmt.Fprintf(stdout, "baton stop: the main process %d exited\n", pid)
			return exitDone
		}
	}
}

// ask sends one request and reads the master's reply: with req.Progress, pending lines
// (each handed to progress) until the result. The wait is timeout if it is not 0; else
// the deadline of the master's pending line plus deadlineMargin, or, from a master that
// sent none, fallbackWait for a waited-for result and replyWait for anything else. A wait
// that ends after the request was sent is a *stillInFlight: the master took the request,
// and what it started goes on.
func ask(path string, req supervisor.ControlRequest, timeout time.Duration, progress func(supervisor.ControlReply)) (supervisor.ControlReply, error) {
	var reply supervisor.ControlReply
	start := time.Now()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return reply, &noMaster{path, err}
	}
	if err != nil {
		return reply, fmt.Errorf("%w on %s: %w", errUnreachable, path, err)
	}
	defer c.Close()
	wait := timeout
	if wait == 0 {
		wait = replyWait
		if req.Wait {
			wait = fallbackWait
		}
	}
	deadline := start.Add(wait)
	c.SetDeadline(deadline)
	b, _ := json.Marshal(req)
	_, werr := c.Write(append(b, '\n'))
	// Read even when the write failed: a master that turns us away answers, then closes
	// before it reads anything.
	r := bufio.NewReader(c)
	var pending *supervisor.ControlReply
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			switch {
			case werr != nil:
				return reply, fmt.Errorf("%w on %s: %w", errUnreachable, path, werr)
			case errors.Is(err, os.ErrDeadlineExceeded) && (req.Wait || pending != nil):
				return reply, &stillInFlight{verb: req.Verb, after: time.Since(start).Round(time.Second), pending: pending}
			case errors.Is(err, os.ErrDeadlineExceeded):
				return reply, fmt.Errorf("%w on %s: no reply within %s", errUnreachable, path, wait)
			}
			return reply, fmt.Errorf("no result from the master (the connection closed: %v): see `baton status`", err)
		}
		reply = supervisor.ControlReply{}
		if err := json.Unmarshal(line, &reply); err != nil {
			return reply, fmt.Errorf("bad reply from the master: %w", err)
		}
		if !reply.Pending || !req.Progress {
			return reply, nil
		}
		p := reply
		pending = &p
		if progress != nil {
			progress(reply)
		}
		if d, err := time.Parse(time.RFC3339, reply.Deadline); err == nil && timeout == 0 {
			c.SetDeadline(d.Add(deadlineMargin))
		}
		reply = supervisor.ControlReply{}
	}
}

// stillInFlight: the wait ended before the result; the master took the request (it sent a
// pending line, or was asked to wait and did not turn the request away at once).
type stillInFlight struct {
	verb    string
	after   time.Duration
	pending *supervisor.ControlReply
}

func (e *stillInFlight) Error() string {
	if e.pending != nil {
		return fmt.Sprintf("%s still in flight after %s: see `baton status`", e.verb, e.after)
	}
	return fmt.Sprintf("no result within %s; the %s may still be in flight: see `baton status`", e.after, e.verb)
}
