//go:build linux

package spawn

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"unsafe"
)

// failure is what the child writes to the pipe when a step fails: for a journal step, a
// warning, and the child goes on; for any other, the end.
type failure struct {
	step  uintptr
	errno uintptr
}

const (
	stepSetpgid = iota + 1
	stepSignals
	stepSetgroups
	stepSetgid
	stepSetuid
	stepChdir
	stepPdeathsig
	stepFiles
	stepRlimit
	stepExec
	stepJournalSocket
	stepJournalConnect
	stepJournalHeader
	stepJournalSetup
	stepTrampoline // the fallback's re-executed binary (trampoline_linux.go)
	stepExecBegin  // the fallback's trampoline is about to exec: not a failure
)

var stepNames = [...]string{
	stepSetpgid: "setpgid", stepSignals: "signals", stepSetgroups: "setgroups",
	stepSetgid: "setgid", stepSetuid: "setuid", stepChdir: "chdir", stepPdeathsig: "pdeathsig",
	stepFiles: "fds", stepRlimit: "rlimit", stepExec: "exec",
	stepJournalSocket: "journal stream: socket", stepJournalConnect: "journal stream: connect",
	stepJournalHeader: "journal stream: header", stepJournalSetup: "journal stream: set up",
	stepTrampoline: "trampoline",
}

func isJournalStep(step uintptr) bool { return step >= stepJournalSocket && step <= stepJournalSetup }

// journalSndbuf is the send buffer asked for a journal stream, as systemd asks for its
// own (SNDBUF_SIZE): a burst of lines does not block the worker while journald is busy.
// The kernel caps it at net.core.wmem_max unless the child may exceed that.
const journalSndbuf = 8 << 20

const (
	listenPIDPrefix   = "LISTEN_PID="
	watchdogPIDPrefix = "WATCHDOG_PID="
)

// pidPrefixes are the variables a's child sets to its own pid, "NAME=" each.
func (a *Attr) pidPrefixes() []string {
	var ps []string
	if a.ListenPID {
		ps = append(ps, listenPIDPrefix)
	}
	if a.WatchdogPID {
		ps = append(ps, watchdogPIDPrefix)
	}
	return ps
}

// withoutPrefixes returns env without the entries that start with one of prefixes.
func withoutPrefixes(env []string, prefixes []string) []string {
	kept := make([]string, 0, len(env))
	for _, kv := range env {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			kept = append(kept, kv)
		}
	}
	return kept
}

// maxSignal is the highest signal number on Linux (SIGRTMAX).
const maxSignal = 64

// Error is a start that failed in the child, before or at exec.
type Error struct {
	Path string
	Step string // what the child was doing: "exec", "chdir", "setuid", …
	Err  error
}

func (e *Error) Error() string {
	if e.Step == "exec" {
		return fmt.Sprintf("exec %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("start %s: %s: %v", e.Path, e.Step, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func cStrings(ss []string) ([]*byte, error) {
	out := make([]*byte, 0, len(ss)+1)
	for _, s := range ss {
		b, err := syscall.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return append(out, nil), nil
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// collect reads the child's reports from rfd, which only the child's copy keeps open once
// Start has closed its own, and closes it: end-of-file means the child exec'd the program
// (the copy is close-on-exec); a failure record means it did not, unless it is a journal
// step's, a warning the child wrote before it went on. A child that did not exec is reaped.
//
// begin says the child first announces the exec (stepExecBegin), as the fallback's
// trampoline does: end-of-file without it means the trampoline died before the exec.
func collect(rfd, pid int, path string, begin bool) (proc *os.Process, warning error, err error) {
	var f failure
	report := (*[unsafe.Sizeof(f)]byte)(unsafe.Pointer(&f))[:]
	var n int
	var rerr error
	begun := !begin
	for {
		n, rerr = readFull(rfd, report)
		if rerr != nil || n != len(report) {
			break
		}
		if f.step == stepExecBegin {
			begun = true
			continue
		}
		if !isJournalStep(f.step) {
			break
		}
		warning = &Error{Path: path, Step: stepNames[f.step], Err: syscall.Errno(f.errno)}
	}
	syscall.Close(rfd)
	if rerr == nil && n == 0 && begun {
		proc, err = os.FindProcess(pid)
		return proc, warning, err
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	if !begun && n == 0 && (rerr == nil || rerr == syscall.ECONNRESET) {
		// ECONNRESET: it ended without reading all of the plan.
		return nil, nil, fmt.Errorf("spawn: %s: the trampoline ended before the exec (%s)", path, waitString(ws))
	}
	if rerr != nil || n != len(report) {
		return nil, nil, fmt.Errorf("spawn: %s: the child's report was lost (%d bytes, %v)", path, n, rerr)
	}
	step := "step " + fmt.Sprint(f.step)
	if f.step < uintptr(len(stepNames)) && stepNames[f.step] != "" {
		step = stepNames[f.step]
	}
	return nil, nil, &Error{Path: path, Step: step, Err: syscall.Errno(f.errno)}
}

func waitString(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
