//go:build lab && linux

package fleet

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// hostCount is the fleet's size: the issue asks for at least 4, and 4 is what makes
// serial [1, 25%, 100%] three batches and "host 3 of 4" meaningful.
const hostCount = 4

// The releases: a package version each (packaging/build.sh), and what `baton version`
// and `baton status` say of it.
var releases = []string{"v0.0.0-fleet.1", "v0.0.0-fleet.2", "v0.0.0-fleet.3"}

// fl is the fleet of this run; TestMain sets it up before any test runs.
var fl *fleet

// fleet is the labs of this run, and what the test built for them.
type fleet struct {
	Script      string   // the lab script
	Repo        string   // the repository
	Dir         string   // this run's scratch directory, bound read-only into every lab
	Bin         string   // Dir/bin: load
	Collections string   // ANSIBLE_COLLECTIONS_PATH: holds ansible_collections/baton/baton
	Logs        string   // where the plays' output is kept (BATON_FLEET_LOGS), or ""
	Debs        []string // the .deb of each release, as releases
	Hosts       []*host
}

// host is one lab, and one host of the inventory.
type host struct {
	Name string // inventory name: host1 … host4
	Lab  string // LAB_NAME
	PID  int    // the lab's PID 1, as this machine's PID namespace numbers it (nsenter's target)
}

// TestMain builds the packages, boots the labs (in parallel), runs the tests and powers
// the labs off, however the run ends.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "fleet: needs root (systemd-nspawn); skipping every test")
		return 0
	}
	f, r, err := setUp()
	if r != nil {
		defer r.finish()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet: %v\n", err)
		return 1
	}
	fl = f
	return m.Run()
}

func setUp() (*fleet, *reaper, error) {
	for _, tool := range []string{"ansible-playbook", "go-md2man"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, nil, fmt.Errorf("%s not found: `make fleet` installs it (apt-get install ansible go-md2man)", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return nil, nil, err
	}
	f := &fleet{Repo: repo, Script: os.Getenv("LAB"), Logs: os.Getenv("BATON_FLEET_LOGS")}
	if f.Script == "" {
		f.Script = filepath.Join(repo, "..", "shared", "systemd-lab", "lab")
	}
	base := "/var/lib/baton-fleet" // not /tmp: the units have PrivateTmp=yes
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, nil, err
	}
	if f.Dir, err = os.MkdirTemp(base, fmt.Sprintf("run-%d-", os.Getpid())); err != nil {
		return nil, nil, err
	}
	os.Chmod(f.Dir, 0o755)
	f.Bin = filepath.Join(f.Dir, "bin")
	for i := 1; i <= hostCount; i++ {
		f.Hosts = append(f.Hosts, &host{Name: fmt.Sprintf("host%d", i), Lab: fmt.Sprintf("baton-fleet-%d-%d", os.Getpid(), i)})
	}
	r, err := startReaper(f)
	if err != nil {
		os.RemoveAll(f.Dir)
		return nil, nil, err
	}
	t0 := time.Now()
	booted := make(chan error, 1)
	go func() { booted <- f.boot() }() // the labs boot while the packages build
	berr := f.build()
	if err := <-booted; err != nil {
		return nil, r, err
	}
	if berr != nil {
		return nil, r, berr
	}
	fmt.Fprintf(os.Stderr, "fleet: %d labs up and fresh, packages built, in %s\n", hostCount, time.Since(t0).Round(time.Millisecond))
	return f, r, nil
}

// build makes a .deb of each release with packaging/build.sh, the load generator, and the
// collection's path for ansible.
func (f *fleet) build() error {
	t0 := time.Now()
	for i, v := range releases {
		out := filepath.Join(f.Dir, "pkg", strconv.Itoa(i+1))
		cmd := exec.Command("bash", "packaging/build.sh", v, out)
		cmd.Dir = f.Repo
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("packaging/build.sh %s: %v\n%s", v, err, b)
		}
		debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
		if len(debs) != 1 {
			return fmt.Errorf("packaging/build.sh %s: want one .deb in %s, have %v", v, out, debs)
		}
		f.Debs = append(f.Debs, debs[0])
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", filepath.Join(f.Bin, "load"), "./bench/cmd/load")
	cmd.Dir = f.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static: runs on any lab root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./bench/cmd/load: %v\n%s", err, b)
	}
	// The collection's own script makes DIR/ansible_collections/baton/baton point at
	// ansible/ and prints DIR.
	cmd = exec.Command("bash", "ansible/collections.sh", filepath.Join(f.Dir, "collections"))
	cmd.Dir = f.Repo
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ansible/collections.sh: %v", err)
	}
	f.Collections = strings.TrimSpace(string(b))
	fmt.Fprintf(os.Stderr, "fleet: built %d packages and load in %s\n", len(releases), time.Since(t0).Round(time.Millisecond))
	return nil
}

// boot starts every lab at once and makes each a fresh Debian host.
func (f *fleet) boot() error {
	t0 := time.Now()
	errs := make([]error, len(f.Hosts))
	var wg sync.WaitGroup
	for i, h := range f.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.bootOne(h)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fleet: %d labs booted in %s\n", len(f.Hosts), time.Since(t0).Round(time.Millisecond))
	return nil
}

func (f *fleet) bootOne(h *host) error {
	up := f.command(h, "up")
	if b, err := up.CombinedOutput(); err != nil {
		return fmt.Errorf("lab up %s: %v\n%s", h.Lab, err, b)
	}
	b, err := f.command(h, "pid").Output()
	if err != nil {
		return fmt.Errorf("lab pid %s: %v", h.Lab, err)
	}
	if h.PID, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return fmt.Errorf("lab pid %s: %q", h.Lab, b)
	}
	// A writable /usr and an empty dpkg database: the shared script packaging/test.sh's
	// lab part starts with too.
	if _, errOut, err := f.exec(h, "", "bash", filepath.Join(f.Repo, "packaging/testdata/lab-fresh-host.sh")); err != nil {
		return fmt.Errorf("%s: lab-fresh-host.sh: %v: %s", h.Name, err, errOut)
	}
	return nil
}

// command is `lab ARGS…` for h's lab.
func (f *fleet) command(h *host, args ...string) *exec.Cmd {
	cmd := exec.Command(f.Script, args...)
	cmd.Env = append(os.Environ(), "LAB_NAME="+h.Lab, "LAB_ROOT=host", "LAB_BIND_RO="+f.Repo+" "+f.Dir)
	return cmd
}

// exec runs argv inside h with stdin and returns its stdout and stderr; err is an
// *exec.ExitError when the command ran and failed.
func (f *fleet) exec(h *host, stdin string, argv ...string) (stdout, stderr string, err error) {
	cmd := f.command(h, append([]string{"exec"}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// reaper is a process that outlives the test binary if it must: it waits for its stdin
// (a pipe only the test binary holds) to close, then powers every lab off (at once) and
// removes the scratch directory. A panic, a -timeout or a signal that ends the test
// binary closes the pipe as surely as a normal end does.
type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

func startReaper(f *fleet) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := []string{"-c",
		// The second down removes the stopped lab's state directory.
		`cat >/dev/null; lab=$0 dir=$1; shift
		for n in "$@"; do (LAB_NAME=$n "$lab" down; LAB_NAME=$n "$lab" down >/dev/null 2>&1) & done
		wait
		case "$dir" in /var/lib/baton-fleet/*) rm -rf "$dir";; esac`,
		f.Script, f.Dir}
	for _, h := range f.Hosts {
		args = append(args, h.Lab)
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a ^C to the test is not a ^C to it
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start the reaper: %w", err)
	}
	return &reaper{cmd: cmd, w: w}, nil
}

// finish closes the pipe and waits for the labs to be down.
func (r *reaper) finish() {
	t0 := time.Now()
	r.w.Close()
	r.cmd.Wait()
	fmt.Fprintf(os.Stderr, "fleet: labs down in %s\n", time.Since(t0).Round(time.Millisecond))
}

// ---------------------------------------------------------------- load

// hostLoad is bench/cmd/load running inside one host against baton@web's TCP listener
// (the labs' network is loopback only): new connection per request, never retried, each
// failure counted by kind. It runs until its standard input, a pipe the test holds, is
// closed.
type hostLoad struct {
	h      *host
	cmd    *exec.Cmd
	stdin  *os.File
	stdout strings.Builder
	warm   chan struct{}
	stderr lockedBuffer
}

// loadClients per host: enough to keep a request in flight on every host at every moment
// of the play, few enough that four hosts' load leaves the two cores to the upgrades.
const loadClients = 2

// startLoad starts the load on every host and returns once each has had answers.
func (f *fleet) startLoad(t *testing.T) []*hostLoad {
	t.Helper()
	var loads []*hostLoad
	for _, h := range f.Hosts {
		l := &hostLoad{h: h, warm: make(chan struct{})}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		l.stdin = w
		l.cmd = f.command(h, "exec", filepath.Join(f.Bin, "load"), "-addr", "127.0.0.1:8080",
			"-mode", "new-conn", "-clients", strconv.Itoa(loadClients), "-duration", "1h",
			"-timeout", "10s", "-json", "-until-eof", "-warm", "20")
		l.cmd.Stdin = r
		l.cmd.Stdout = &l.stdout
		errPipe, err := l.cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.cmd.Start(); err != nil {
			t.Fatalf("%s: start load: %v", h.Name, err)
		}
		r.Close()
		go func() {
			sc := bufio.NewScanner(errPipe)
			warm := false
			for sc.Scan() {
				l.stderr.Write([]byte(sc.Text() + "\n"))
				if !warm && strings.HasPrefix(sc.Text(), "load: warm") {
					warm = true
					close(l.warm)
				}
			}
		}()
		t.Cleanup(func() { w.Close() }) // a failed test's load ends too
		loads = append(loads, l)
	}
	for _, l := range loads {
		select {
		case <-l.warm:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the load got no 20 answers in 30 s: %s", l.h.Name, l.stderr.String())
		}
	}
	return loads
}

// stop ends the load and returns what it counted.
func (l *hostLoad) stop(t *testing.T) *load.Result {
	t.Helper()
	l.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- l.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: some failed
			t.Fatalf("%s: load: %v: %s", l.h.Name, err, l.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: load did not end within 30 s of its stdin's end", l.h.Name)
	}
	var r load.Result
	if err := json.Unmarshal([]byte(l.stdout.String()), &r); err != nil {
		t.Fatalf("%s: load's result: %v: %q", l.h.Name, err, l.stdout.String())
	}
	return &r
}

// failures says how many requests failed, by kind: "0" or "3 (refused=2 reset=1)".
// refused and reset are connection errors: nothing accepted, or the connection dropped.
func failures(r *load.Result) string {
	if r.FailedTotal() == 0 {
		return "0"
	}
	var kinds []string
	for _, k := range load.Kinds {
		if n := r.Failed[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
	}
	s := fmt.Sprintf("%d (%s)", r.FailedTotal(), strings.Join(kinds, " "))
	for i, f := range r.Samples {
		if i == 3 {
			break
		}
		s += fmt.Sprintf("; %s %s", f.At.Format("15:04:05.000"), f.Err)
	}
	return s
}

// lockedBuffer is a strings.Builder safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ---------------------------------------------------------------- what a host runs

// state is what one host runs, read on the host itself.
type state struct {
	PID        int    // the master in charge (baton status)
	Generation int    // its generation
	Version    string // the version it runs
	Step       string // its state: serving, upgrading, …
	MainPID    int    // systemd's MainPID of baton@web.service
	Disk       string // what /usr/bin/baton on disk says it is (`baton version`)
	Package    string // dpkg's version of the package baton
	History    []historyEntry
}

type historyEntry struct {
	Generation int    `json:"generation"`
	Event      string `json:"event"`
	Result     string `json:"result"`
	Reason     string `json:"reason"`
}

func (s state) String() string {
	return fmt.Sprintf("pid %d gen %d %s (%s), MainPID %d, disk %s, package %s", s.PID, s.Generation, s.Version, s.Step, s.MainPID, s.Disk, s.Package)
}

// last is the newest history entry, or a zero one.
func (s state) last() historyEntry {
	if len(s.History) == 0 {
		return historyEntry{}
	}
	return s.History[len(s.History)-1]
}

// stateScript prints `baton status --json`, then a line each for systemd's MainPID, the
// binary on disk and the package's version.
const stateScript = `baton status --json --socket /run/baton/web/control.sock || exit 1
echo
echo "mainpid=$(systemctl show -p MainPID --value baton@web.service)"
echo "disk=$(/usr/bin/baton version)"
echo "package=$(dpkg-query -W -f='${Version}' baton)"`

// stateOf reads what h runs; ok is false (with what was seen) when it cannot be read.
func (f *fleet) stateOf(h *host) (s state, seen string, ok bool) {
	out, errOut, err := f.exec(h, "", "sh", "-c", stateScript)
	if err != nil {
		return s, fmt.Sprintf("%v: %s %s", err, out, errOut), false
	}
	js, rest, _ := strings.Cut(out, "\nmainpid=")
	var st struct {
		OK     bool `json:"ok"`
		Status struct {
			PID        int            `json:"pid"`
			Generation int            `json:"generation"`
			Version    string         `json:"version"`
			State      string         `json:"state"`
			History    []historyEntry `json:"history"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil || !st.OK {
		return s, fmt.Sprintf("baton status --json: %v: %q", err, js), false
	}
	s.PID, s.Generation, s.Version, s.Step, s.History = st.Status.PID, st.Status.Generation, st.Status.Version, st.Status.State, st.Status.History
	for _, line := range strings.Split("mainpid="+rest, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "mainpid":
			s.MainPID, _ = strconv.Atoi(v)
		case "disk":
			s.Disk = strings.TrimPrefix(v, "baton ")
		case "package":
			s.Package = v
		}
	}
	return s, s.String(), true
}

// settled waits until every host's master serves, alone (no upgrade in flight, systemd's
// MainPID is it), and returns their states.
func (f *fleet) settled(t *testing.T) []state {
	t.Helper()
	states := make([]state, len(f.Hosts))
	for i, h := range f.Hosts {
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, seen, ok := f.stateOf(h)
			if ok && s.Step == "serving" && s.MainPID == s.PID {
				states[i] = s
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not serving alone after 30 s; last seen: %s", h.Name, seen)
			}
			time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
		}
	}
	return states
}

// ---------------------------------------------------------------- ansible

// inventory writes an inventory directory for one play: hosts (every host, its lab's
// PID for the nsenter connection), group_vars/baton.json and, for each host in hostVars,
// host_vars/NAME.json. JSON is YAML: no quoting to get wrong.
func (f *fleet) inventory(t *testing.T, name string, groupVars map[string]any, hostVars map[string]map[string]any) string {
	t.Helper()
	dir := filepath.Join(f.Dir, "inventory-"+name)
	var ini strings.Builder
	ini.WriteString("[baton]\n")
	for _, h := range f.Hosts {
		fmt.Fprintf(&ini, "%s ansible_nsenter_pid=%d\n", h.Name, h.PID)
	}
	ini.WriteString("\n[baton:vars]\nansible_connection=community.docker.nsenter\nansible_python_interpreter=/usr/bin/python3\n")
	write := func(path string, v any) {
		b := []byte(ini.String())
		if v != nil {
			var err error
			if b, err = json.MarshalIndent(v, "", "  "); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A copy goes with the plays' output, for whoever reads it after the labs are gone.
	dirs := []string{dir}
	if f.Logs != "" {
		dirs = append(dirs, filepath.Join(f.Logs, "inventory-"+name))
	}
	for _, d := range dirs {
		write(filepath.Join(d, "hosts"), nil)
		write(filepath.Join(d, "group_vars", "baton.json"), groupVars)
		for h, v := range hostVars {
			write(filepath.Join(d, "host_vars", h+".json"), v)
		}
	}
	return dir
}

// play runs ansible-playbook with the inventory (and extra variables, given as -e JSON
// when there are any) and returns its output and exit status. The output is kept in
// BATON_FLEET_LOGS/NAME.log when that is set.
func (f *fleet) play(t *testing.T, name, inventory, playbook string, extraVars map[string]any) (string, int) {
	t.Helper()
	args := []string{"-i", inventory}
	if len(extraVars) > 0 {
		b, err := json.Marshal(extraVars)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "-e", string(b))
	}
	cmd := exec.Command("ansible-playbook", append(args, playbook)...)
	cmd.Dir = f.Dir // no ansible.cfg of the caller's directory
	cmd.Env = append(os.Environ(),
		"ANSIBLE_COLLECTIONS_PATH="+f.Collections,
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_HOME="+filepath.Join(f.Dir, "ansible-home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(f.Dir, "ansible-tmp"),
	)
	t0 := time.Now()
	b, err := cmd.CombinedOutput()
	took := time.Since(t0)
	rc := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		rc = ee.ExitCode()
	case err != nil:
		t.Fatalf("ansible-playbook %s: %v", playbook, err)
	}
	out := string(b)
	t.Logf("%s: ansible-playbook %s: exit %d in %s", name, filepath.Base(playbook), rc, took.Round(100*time.Millisecond))
	if f.Logs != "" {
		os.MkdirAll(f.Logs, 0o755)
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = a
			if strings.ContainsAny(a, ` "{}'`) {
				quoted[i] = "'" + a + "'" // -e JSON: never holds a single quote
			}
		}
		header := fmt.Sprintf("$ ansible-playbook %s %s\n", strings.Join(quoted, " "), playbook)
		footer := fmt.Sprintf("exit %d in %s\n", rc, took.Round(100*time.Millisecond))
		os.WriteFile(filepath.Join(f.Logs, name+".log"), []byte(header+out+footer), 0o644)
	}
	return out, rc
}

// recap returns the PLAY RECAP lines of a play's output, by host.
func recap(out string) map[string]string {
	m := map[string]string{}
	_, after, ok := strings.Cut(out, "PLAY RECAP")
	if !ok {
		return m
	}
	for _, line := range strings.Split(after, "\n") {
		if name, rest, ok := strings.Cut(line, " : "); ok {
			m[strings.TrimSpace(name)] = strings.Join(strings.Fields(rest), " ")
		}
	}
	return m
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
