//go:build lab && linux

package labtest

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers that run things inside the lab. Every one fails the test with the command's
// output when the command cannot be run at all.

// run runs argv inside the lab and returns its stdout; a non-zero exit fails the test.
func run(t testing.TB, argv ...string) string {
	t.Helper()
	out, errOut, err := lab.exec("", argv...)
	if err != nil {
		t.Fatalf("lab exec %s: %v\nstdout: %s\nstderr: %s", strings.Join(argv, " "), err, out, errOut)
	}
	return out
}

// runRC runs argv inside the lab and returns its output and exit status.
func runRC(t testing.TB, argv ...string) (stdout, stderr string, rc int) {
	t.Helper()
	out, errOut, err := lab.exec("", argv...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, errOut, 0
	case errors.As(err, &ee):
		return out, errOut, ee.ExitCode()
	}
	t.Fatalf("lab exec %s: %v", strings.Join(argv, " "), err)
	return "", "", -1
}

// writeFile writes content to path inside the lab (its directory created).
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	_, errOut, err := lab.exec(content, "sh", "-c", `mkdir -p "$(dirname "$1")" && cat >"$1"`, "sh", path)
	if err != nil {
		t.Fatalf("write %s in the lab: %v: %s", path, err, errOut)
	}
}

// show returns the properties of unit, as `systemctl show -p` gives them.
func show(t testing.TB, unit string, props ...string) map[string]string {
	t.Helper()
	argv := []string{"systemctl", "show", unit}
	for _, p := range props {
		argv = append(argv, "-p", p)
	}
	out := run(t, argv...)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// showInt returns one numeric property.
func showInt(t testing.TB, unit, prop string) int {
	t.Helper()
	v := show(t, unit, prop)[prop]
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("systemctl show -p %s %s: %q is not a number", prop, unit, v)
	}
	return n
}

// waitFor polls cond until it reports done, or fails the test after timeout. cond also
// describes what it saw, for the failure message. Polling with a deadline is the only
// way these tests wait.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, saw := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; last seen: %s", what, timeout, saw)
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
	}
}

// waitState waits until unit's properties have the values in want.
func waitState(t testing.TB, timeout time.Duration, unit string, want map[string]string) map[string]string {
	t.Helper()
	var props []string
	for k := range want {
		props = append(props, k)
	}
	var got map[string]string
	waitFor(t, timeout, fmt.Sprintf("%s with %v", unit, want), func() (bool, string) {
		got = show(t, unit, props...)
		for k, v := range want {
			if got[k] != v {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
	return got
}

// proc is what /proc says of a process inside the lab.
type proc struct {
	PID     int
	PPID    int
	State   string // R, S, Z, …
	Cmdline []string
}

// procOf reads /proc/pid inside the lab; ok is false when there is no such process.
func procOf(t testing.TB, pid int) (p proc, ok bool) {
	t.Helper()
	out, _, rc := runRC(t, "sh", "-c", `cat /proc/$1/stat && tr '\0' '\n' </proc/$1/cmdline`, "sh", strconv.Itoa(pid))
	if rc != 0 {
		return p, false
	}
	stat, cmdline, _ := strings.Cut(out, "\n")
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := strings.LastIndex(stat, ")")
	if i < 0 {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	p.PID, p.State = pid, f[0]
	p.PPID, _ = strconv.Atoi(f[1])
	p.Cmdline = strings.Fields(strings.ReplaceAll(cmdline, "\n", " "))
	return p, p.State != "Z"
}

// alive reports whether pid is a live process (not a zombie) inside the lab.
func alive(t testing.TB, pid int) bool {
	t.Helper()
	_, ok := procOf(t, pid)
	return ok
}

// waitGone waits until none of pids is a live process inside the lab.
func waitGone(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("processes %v gone", pids), func() (bool, string) {
		var left []int
		for _, pid := range pids {
			if alive(t, pid) {
				left = append(left, pid)
			}
		}
		return len(left) == 0, fmt.Sprint(left, " alive")
	})
}

// openFDs counts the open file descriptors of pid inside the lab.
func openFDs(t testing.TB, pid int) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(run(t, "sh", "-c", `ls /proc/$1/fd | wc -l`, "sh", strconv.Itoa(pid))))
	if err != nil {
		t.Fatalf("open fds of %d: %v", pid, err)
	}
	return n
}

// pid1Freeze is the cgroup v2 freezer of the lab's systemd (PID 1 runs alone in init.scope).
const pid1Freeze = "/sys/fs/cgroup/init.scope/cgroup.freeze"

// freezePID1 freezes the lab's systemd: until thaw it reads no notification and answers
// no D-Bus call, as a PID 1 that is busy or stuck would (systemctl waits too, so a test
// must not call it meanwhile). The test's end thaws it if the test did not.
func freezePID1(t testing.TB) (thaw func()) {
	t.Helper()
	run(t, "sh", "-c", `echo 1 >`+pid1Freeze)
	thawed := false
	thaw = func() {
		if !thawed {
			thawed = true
			lab.exec("", "sh", "-c", `echo 0 >`+pid1Freeze)
		}
	}
	t.Cleanup(thaw)
	waitFor(t, 5*time.Second, "PID 1 frozen", func() (bool, string) {
		ev := run(t, "cat", "/sys/fs/cgroup/init.scope/cgroup.events")
		return strings.Contains(ev, "frozen 1"), ev
	})
	return thaw
}

// signal sends sig (a name: USR2, QUIT, …) to pid inside the lab.
func signal(t testing.TB, sig string, pid int) {
	t.Helper()
	run(t, "kill", "-s", sig, strconv.Itoa(pid))
}

// daemonReload makes systemd read the unit files and drop-ins again.
func daemonReload(t testing.TB) {
	t.Helper()
	run(t, "systemctl", "daemon-reload")
}
