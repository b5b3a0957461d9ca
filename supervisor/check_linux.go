//go:build linux

package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/internal/spawn"
)

// The health check's process (config [health], probation.go). It is forked the way a
// worker is (internal/spawn): as the workers' user, USR2 and WINCH ignored (a signal aimed
// at the whole service must not fail a check), in a process group of its own that is
// SIGKILLed when the run ends, so nothing it started outlives it, and killed if the master
// dies. Its stdin is /dev/null; its stdout and stderr go to a pipe of which the master keeps
// the end (checkOutputMax), for the reason of a failure.

// checkOutputMax is how much of a check's output is kept: its end.
const checkOutputMax = 4096

func (s *osSystem) environ() []string { return os.Environ() }

// runCheck starts a run of the check, off the loop; its result is posted as checkDone.
func (s *osSystem) runCheck(c checkRun) {
	stop := make(chan struct{})
	if s.checks == nil {
		s.checks = map[*probation]chan struct{}{}
	}
	s.checks[c.pr] = stop
	go func() {
		err, out := s.check(c, stop)
		s.m.post(checkDone{pr: c.pr, seq: c.seq, err: err, out: out})
	}()
}

// stopCheck forgets pr's runs; one still running is killed.
func (s *osSystem) stopCheck(pr *probation) {
	if stop, ok := s.checks[pr]; ok {
		close(stop)
		delete(s.checks, pr)
	}
}

// check runs c to its end, its timeout or stop, and says how it ended (nil: exit status 0)
// and the last line of its output.
func (s *osSystem) check(c checkRun, stop <-chan struct{}) (error, string) {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cannot start: %w", err), ""
	}
	defer r.Close()
	attr := &spawn.Attr{
		Path:       c.argv[0],
		Args:       c.argv,
		Env:        c.env,
		Dir:        c.dir,
		Files:      []*os.File{s.m.devNull, w, w},
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: c.pool.cred,
		Ignore:     forkSignals,
		Nofile:     s.m.nofile,
	}
	var proc *os.Process
	err = withForkSignalsBlocked(func() (err error) {
		proc, _, err = spawn.Start(attr)
		return err
	})
	w.Close()
	if err != nil {
		return fmt.Errorf("cannot start: %w", err), ""
	}
	pid := proc.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		proc.Kill()
		proc.Wait()
		return fmt.Errorf("cannot start: %w", os.NewSyscallError("pidfd_open", err)), ""
	}
	proc.Release()
	defer unix.Close(pidfd)

	outc := make(chan []byte, 1)
	go func() { outc <- readTail(r, checkOutputMax) }()
	exited := make(chan exitStatus, 1)
	go func() { exited <- waitExited(pidfd) }()
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()

	var res error
	select {
	case st := <-exited:
		if !st.known || st.signal != 0 || st.code != 0 {
			res = errors.New(st.String())
		}
		exited <- st
	case <-deadline.C:
		res = fmt.Errorf("timed out after %s", c.timeout)
	case <-stop:
		res = errors.New("stopped: the probation ended")
	}
	// The leader is not reaped yet, so the group's id is still its own: whatever the check
	// left running dies with it.
	unix.Kill(-pid, unix.SIGKILL)
	<-exited
	var info unix.Siginfo
	for unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED, nil) == unix.EINTR {
	}
	// A process that left the group (setsid) may hold the pipe open: the output read so
	// far is enough.
	r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	return res, lastLine(<-outc)
}

// readTail reads r to its end (or an error) and returns the last max bytes of it.
func readTail(r io.Reader, max int) []byte {
	var keep []byte
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		keep = append(keep, buf[:n]...)
		if len(keep) > max {
			keep = append(keep[:0], keep[len(keep)-max:]...)
		}
		if err != nil {
			return keep
		}
	}
}

// lastLine is the last non-empty line of out, made printable and short.
func lastLine(out []byte) string {
	out = bytes.TrimRight(out, " \t\r\n")
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return cleanText(strings.TrimSpace(string(out)))
}
