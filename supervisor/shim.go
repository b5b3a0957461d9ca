//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
)

// ShimVerb is the hidden command-line verb under which baton's own binary runs as the exec
// shim between the master and a worker. cmd/baton dispatches it to RunShim before anything
// else.
const ShimVerb = "__shim"

// RunShim is the start of every worker, a millisecond or two of a static Go binary's
// start-up before the worker's own exec: it runs in the child the master forked,
// sets LISTEN_PID to its own pid (which execve keeps, and which os/exec cannot set after
// fork), leaves SIGUSR2 and SIGWINCH ignored so that `systemctl kill -s USR2` aimed at the
// whole unit does not reach the worker's default handlers, and execs the worker's command.
// args is the command and its arguments. It returns only on failure, with the exit code to
// use (127, as a shell does for a command it cannot run).
func RunShim(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "baton shim: no command")
		return 127
	}
	if os.Getenv("LISTEN_FDS") != "" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	// SIG_IGN survives execve; handled signals are reset to their defaults.
	signal.Ignore(syscall.SIGUSR2, syscall.SIGWINCH)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "baton shim: worker command %q: %v\n", args[0], err)
		return 127
	}
	// The master forked us with USR2 and WINCH blocked (see withForkSignalsBlocked); they
	// are ignored now, and the worker gets an empty mask.
	runtime.LockOSThread()
	clearSignalMask()
	err = syscall.Exec(path, args, os.Environ())
	fmt.Fprintf(os.Stderr, "baton shim: exec %s: %v\n", path, err)
	return 127
}
