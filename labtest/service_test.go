//go:build lab && linux

package labtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// instance is one instance of a service template under test, with its config and
// drop-ins. Create it with newInstance, adjust conf, then start it.
type instance struct {
	t       testing.TB
	Unit    *Unit  // the template (baton@.service)
	Name    string // baton@inst.service
	Socket  string // baton@inst.socket, when the template has a socket unit
	Inst    string
	Config  string // the config file's path inside the lab
	Control string // the control socket's path inside the lab ("" if none)
	HTTP    string // address of the listener named FDName: 127.0.0.1:port
	FDName  string // the name hello serves: the socket unit's FileDescriptorName=, or "http"
	conf    conf
	sockets []string // socket units to start before the service, Socket first
}

// conf is a baton config file.
type conf struct {
	Listen  []listen // [[listen]] tables; the instance's HTTP listener is added when it needs one
	Workers int
	Command []string // default: hello serving FDName
	Commit  string   // upgrade.commit
	Soak    string
	Timeout string // upgrade.timeout
	Extra   string // appended verbatim
	Worker  string // more keys of [worker] (user, group)
	Top     string // top-level keys (control_socket, pidfile), before every table
}

type listen struct{ Name, Address string }

// newInstance finds the unit for r and prepares instance inst of it, its HTTP listener on
// 127.0.0.1:port. It skips the test when the running systemd cannot have such a unit.
func newInstance(t testing.TB, r role, inst string, port int) *instance {
	t.Helper()
	if r == roleNotifyReload && lab.Version < 253 {
		t.Skipf("Type=notify-reload needs systemd 253 or later; this is %d", lab.Version)
	}
	u, err := lab.Units.service(r)
	if err != nil {
		t.Fatalf("units: %v", err)
	}
	base := strings.TrimSuffix(u.Name, "@.service")
	in := &instance{
		t: t, Unit: u, Inst: inst,
		Name:    base + "@" + inst + ".service",
		Config:  configPath(u, inst),
		Control: controlSocket(u, inst),
		HTTP:    "127.0.0.1:" + strconv.Itoa(port),
		FDName:  "http",
		conf:    conf{Workers: 2, Commit: "auto", Soak: "1s", Timeout: "10s"},
	}
	if s := lab.Units.socketOf(u); s != nil {
		in.Socket = base + "@" + inst + ".socket"
		in.sockets = []string{in.Socket}
		if n := s.Get("Socket", "FileDescriptorName"); n != "" {
			in.FDName = expand(n, inst)
		} else {
			in.FDName = in.Socket
		}
		// The shipped ListenStream= is replaced by the test's address.
		in.dropIn(in.Socket, "[Socket]\nListenStream=\nListenStream="+in.HTTP+"\n")
	}
	t.Cleanup(in.cleanup)
	return in
}

// dropIn writes a drop-in for unit (the service, its socket, or any unit of the test).
func (in *instance) dropIn(unit, text string) {
	in.t.Helper()
	writeFile(in.t, "/etc/systemd/system/"+unit+".d/labtest.conf", text)
}

// serviceDropIn adds [Service] lines to the service.
func (in *instance) serviceDropIn(lines ...string) {
	in.t.Helper()
	in.dropIn(in.Name, "[Service]\n"+strings.Join(lines, "\n")+"\n")
}

// configText renders the config file.
func (in *instance) configText(c conf) string {
	var b strings.Builder
	if c.Top != "" {
		b.WriteString(c.Top + "\n\n")
	}
	ls := c.Listen
	if in.Socket == "" && !slices.ContainsFunc(ls, func(l listen) bool { return l.Name == in.FDName }) {
		ls = append([]listen{{in.FDName, in.HTTP}}, ls...)
	}
	for _, l := range ls {
		fmt.Fprintf(&b, "[[listen]]\nname = %q\naddress = %q\n\n", l.Name, l.Address)
	}
	cmd := c.Command
	if cmd == nil {
		cmd = []string{filepath.Join(lab.Bin, "hello"), "-names", in.FDName, "-drain", "300ms"}
	}
	quoted := make([]string, len(cmd))
	for i, a := range cmd {
		quoted[i] = strconv.Quote(a)
	}
	fmt.Fprintf(&b, "[worker]\ncommand = [%s]\ncount = %d\nstart_timeout = \"10s\"\nstop_timeout = \"10s\"\nrestart_delay = \"100ms\"\n",
		strings.Join(quoted, ", "), c.Workers)
	if c.Worker != "" {
		b.WriteString(c.Worker + "\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[upgrade]\ncommit = %q\nsoak = %q\ntimeout = %q\n", c.Commit, c.Soak, c.Timeout)
	if c.Extra != "" {
		b.WriteString("\n" + c.Extra + "\n")
	}
	return b.String()
}

// writeConfig writes the instance's config file.
func (in *instance) writeConfig(c conf) {
	in.t.Helper()
	in.conf = c
	writeFile(in.t, in.Config, in.configText(c))
}

// start writes the config, starts the sockets and the service, and waits until the
// service is active (Type=notify: systemctl start returns once READY=1 arrived).
func (in *instance) start() {
	in.t.Helper()
	in.writeConfig(in.conf)
	daemonReload(in.t)
	for _, s := range in.sockets {
		run(in.t, "systemctl", "start", s)
	}
	if _, errOut, rc := runRC(in.t, "systemctl", "start", in.Name); rc != 0 {
		dumpJournal(in.t, in.Name)
		in.t.Fatalf("systemctl start %s: exit %d: %s", in.Name, rc, errOut)
	}
	waitState(in.t, 10*time.Second, in.Name, map[string]string{"ActiveState": "active"})
}

// mainPID is systemd's MainPID of the service.
func (in *instance) mainPID() int {
	in.t.Helper()
	return showInt(in.t, in.Name, "MainPID")
}

// cleanup stops what the test started and, when it failed, logs the journal.
func (in *instance) cleanup() {
	t := in.t
	if t.Failed() {
		dumpJournal(t, in.Name)
		if st := show(t, in.Name, "MainPID", "ActiveState", "SubState", "Result", "StatusText", "NRestarts", "NFileDescriptorStore"); st != nil {
			t.Logf("systemctl show %s: %v", in.Name, st)
		}
	}
	// Fast: the tests that care about stopping stop the service themselves.
	lab.exec("", "systemctl", "kill", "-s", "KILL", in.Name)
	lab.exec("", append([]string{"systemctl", "stop", in.Name}, in.sockets...)...)
	lab.exec("", append([]string{"systemctl", "reset-failed", in.Name}, in.sockets...)...)
}

// workersOf returns the pids of the workers master reported ready, in the entries.
func workersOf(es []entry, master int) []int {
	var pids []int
	for _, e := range withMsg(es, "worker ready") {
		if e.AttrInt("pid") == master {
			pids = append(pids, e.AttrInt("worker_pid"))
		}
	}
	return pids
}

// waitWorkers waits until master has reported n workers ready after the cursor and
// returns their pids.
func (in *instance) waitWorkers(after string, master, n int) []int {
	in.t.Helper()
	var pids []int
	waitJournal(in.t, 20*time.Second, in.Name, after, fmt.Sprintf("%d workers of master %d ready", n, master), func(es []entry) bool {
		pids = workersOf(es, master)
		return len(pids) >= n
	})
	return pids
}

// status asks the master in charge for `baton status --json`, through the control socket.
func (in *instance) status() string {
	in.t.Helper()
	if in.Control == "" {
		in.t.Fatalf("%s has no RuntimeDirectory=, so no default control socket", in.Unit.Name)
	}
	return run(in.t, filepath.Join(lab.Bin, "baton"), "status", "--json", "--socket", in.Control)
}

// sampler records the distinct values of some properties of a unit while a test runs.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	seen []string // the output of systemctl show, each distinct value in order
}

// sample polls the properties of unit until finish.
func sample(unit string, props ...string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	argv := []string{"systemctl", "show", unit}
	for _, p := range props {
		argv = append(argv, "-p", p)
	}
	go func() {
		defer close(s.done)
		for {
			out, _, err := lab.exec("", argv...)
			if err == nil {
				v := strings.TrimSpace(out)
				s.mu.Lock()
				if len(s.seen) == 0 || s.seen[len(s.seen)-1] != v {
					s.seen = append(s.seen, v)
				}
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s
}

// finish stops the sampler and returns what it saw, each value as property → value.
func (s *sampler) finish() []map[string]string {
	close(s.stop)
	<-s.done
	var out []map[string]string
	for _, v := range s.seen {
		m := map[string]string{}
		for _, line := range strings.Split(v, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// swapBaton replaces the baton binary the units start with another build (as an upgrade
// of the package would: a new file renamed over the old path). The test's end puts
// labtest-1 back.
func swapBaton(t testing.TB, from string) {
	t.Helper()
	if err := copyFile(filepath.Join(lab.Bin, from), filepath.Join(lab.Bin, "baton")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := copyFile(filepath.Join(lab.Bin, "baton-v1"), filepath.Join(lab.Bin, "baton")); err != nil {
			t.Error(err)
		}
	})
}

// installScript puts a shell script where the units start baton, for the tests of a new
// master that fails; the test's end puts baton back.
func installScript(t testing.TB, script string) {
	t.Helper()
	p := filepath.Join(lab.Bin, "script")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	swapBaton(t, "script")
}
