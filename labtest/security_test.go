//go:build lab && linux

package labtest

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxExposure is the highest `systemd-analyze security` score a shipped service unit may
// have: 4.0 and below is "OK" (issue 13).
const maxExposure = 4.0

// TestSecurityScore: every service template installed from units/ (on >= 254 also the
// v254/ forms), as an instance, scores at most maxExposure in `systemd-analyze security`
// of the running systemd, which judges the unit as loaded (drop-ins, defaults, the
// version's own checks).
func TestSecurityScore(t *testing.T) {
	var names []string
	for n := range lab.Units.Units {
		if strings.HasSuffix(n, "@.service") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatalf("no service template in %s", lab.Units.Dir)
	}
	re := regexp.MustCompile(`Overall exposure level for (\S+): (\d+\.\d+) (\S+)`)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			unit := strings.TrimSuffix(n, "@.service") + "@sec.service"
			out, errOut, rc := runRC(t, "systemd-analyze", "security", "--no-pager", unit)
			m := re.FindStringSubmatch(out)
			if rc != 0 || m == nil || m[1] != unit {
				t.Fatalf("systemd-analyze security %s: exit %d, no score for it: %s\n%s", unit, rc, errOut, out)
			}
			score, _ := strconv.ParseFloat(m[2], 64)
			t.Logf("systemd %d: %s %s %s", lab.Version, unit, m[2], m[3])
			if score > maxExposure {
				t.Errorf("%s scores %s %s, want at most %.1f:\n%s", unit, m[2], m[3], maxExposure, out)
			}
		})
	}
}

// TestSandboxRefusesWorker: a worker running as root under the socket-activated unit
// tries to write outside ReadWritePaths= (in /var/lib and /run, writable in the lab), to load a
// kernel module and to set the clock: each is refused with EROFS or EPERM, while writing
// in $RUNTIME_DIRECTORY works, and the worker then serves.
func TestSandboxRefusesWorker(t *testing.T) {
	in := newInstance(t, roleSocket, "sbx", 18161)
	in.conf.Workers = 1
	in.conf.Command = []string{lab.Bin + "/sandbox", "-outside", "/var/lib,/run", "--",
		lab.Bin + "/hello", "-names", in.FDName, "-drain", "300ms"}
	after := cursor(t)
	in.start()
	want := map[string]string{
		"write /var/lib": "sandbox: write /var/lib: errno EROFS",
		"write /run":     "sandbox: write /run: errno EROFS",
		"module":         "sandbox: module: errno EPERM",
		"clock":          "sandbox: clock: errno EPERM",
		"runtime":        "sandbox: runtime: ok",
	}
	checks := map[string]func(entry) bool{}
	for what, prefix := range want {
		checks[what] = func(e entry) bool { return strings.HasPrefix(e.Message(), prefix) }
	}
	// Any sandbox line at all for each attempt, so that a wrong answer fails with it.
	es := waitJournal(t, 10*time.Second, in.Name, after, "the sandbox worker's lines", func(es []entry) bool {
		return len(containing(es, "sandbox: ")) >= len(want)
	})
	for what, ok := range checks {
		if len(filter(es, ok)) == 0 {
			t.Errorf("%s: want a line %q, got %v", what, want[what], containing(es, "sandbox: "+what))
		}
	}
	mustServe(t, in.HTTP, 1) // and then it serves
}

// TestSocketsOtherUser: under the socket-activated unit with workers as nobody (which
// become ready, so they reach the notify socket), `reach` run in the unit's mount
// namespace (its private /tmp) tries the workers' notify socket and the control socket:
// as uid 4242, another local user, both fail with EACCES and the master logs nothing of
// it; as nobody (the workers' user, not a worker) the notify socket is reached and the
// datagram dropped, the control socket is not; as root both are reached.
func TestSocketsOtherUser(t *testing.T) {
	in := newInstance(t, roleSocket, "ou", 18162)
	in.conf.Worker = `user = "nobody"`
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	workers := in.waitWorkers(c0, master, 2)
	var addr string
	for _, kv := range strings.Split(run(t, "sh", "-c", `tr '\0' '\n' </proc/$1/environ`, "sh", strconv.Itoa(workers[0])), "\n") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			addr = v
		}
	}
	if !strings.HasPrefix(addr, "/") {
		t.Fatalf("worker %d: NOTIFY_SOCKET=%q, want a path (an abstract socket lets anyone in)", workers[0], addr)
	}
	reach := func(who ...string) string {
		t.Helper()
		argv := append([]string{"nsenter", "-t", strconv.Itoa(master), "-m", "--"}, who...)
		return run(t, append(argv, lab.Bin+"/reach", "-notify", addr, "-control", in.Control)...)
	}
	as := func(uid int) []string {
		id := strconv.Itoa(uid)
		return []string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"}
	}
	c1 := cursor(t)
	if got, want := reach(as(4242)...), "notify: errno EACCES\ncontrol: errno EACCES\n"; got != want {
		t.Errorf("as uid 4242: %q, want %q", got, want)
	}
	if got, want := reach(as(65534)...), "notify: ok\ncontrol: errno EACCES\n"; got != want {
		t.Errorf("as nobody: %q, want %q", got, want)
	}
	waitJournal(t, 10*time.Second, in.Name, c1, "the master dropping nobody's datagram", func(es []entry) bool {
		return len(withMsg(es, "notify message from a process that is not a worker dropped")) > 0
	})
	if es := containing(journal(t, in.Name, c1), "control connection refused"); len(es) != 0 {
		t.Errorf("the master logged refused control connections: %v", es)
	}
	if got, want := reach(), "notify: ok\ncontrol: ok\n"; got != want {
		t.Errorf("as root: %q, want %q", got, want)
	}
	mustServe(t, in.HTTP, 2)
}

// TestReadOnlyControlSocket: a control_socket outside the runtime directory, with no
// ReadWritePaths= for it, fails the start (ProtectSystem=strict), and the master's error
// says how to allow it.
func TestReadOnlyControlSocket(t *testing.T) {
	in := newInstance(t, roleFDStore, "ro", 18163)
	in.conf.Top = `control_socket = "/run/labtest-ro.sock"`
	in.writeConfig(in.conf)
	daemonReload(t)
	c0 := cursor(t)
	if _, _, rc := runRC(t, "systemctl", "start", in.Name); rc == 0 {
		t.Fatalf("systemctl start %s: exit 0, want a failure (/run is read-only for the unit)", in.Name)
	}
	waitJournal(t, 10*time.Second, in.Name, c0, "the master's read-only error with its hint", func(es []entry) bool {
		return len(containing(containing(es, "read-only file system"), "ReadWritePaths=")) > 0
	})
}
