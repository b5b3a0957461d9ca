//go:build lab && linux

package labtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lab is the one container of this run; TestMain sets it up before any test runs.
var lab *Lab

// Lab is a running systemd-lab container, and what the tests installed in it.
type Lab struct {
	Script  string // the lab script
	Name    string // LAB_NAME: unique per run
	Root    string // LAB_ROOT: host, bookworm-backports, trixie, or a directory
	Repo    string // the repository, bound at the same path inside
	Dir     string // this run's scratch directory, bound at the same path inside
	Bin     string // Dir/bin: baton, baton-v1, baton-v2, hello, probe, flood
	Version int    // systemd's major version inside
	Units   *UnitSet
}

// TestMain boots one lab for the whole run, builds the binaries into a directory bound
// into it, installs the units, runs the tests and powers the lab off.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "labtest: needs root (systemd-nspawn); skipping every test")
		return 0
	}
	l, reaper, err := setUp()
	if reaper != nil {
		// However this function ends, the reaper powers the lab off and removes the
		// scratch directory once its pipe closes; on a normal end we wait for it.
		defer reaper.finish()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "labtest: %v\n", err)
		return 1
	}
	lab = l
	return m.Run()
}

// setUp starts the reaper, boots the lab and prepares it.
func setUp() (*Lab, *reaper, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, nil, err
	}
	script := os.Getenv("LAB")
	if script == "" {
		script = filepath.Join(repo, "..", "shared", "systemd-lab", "lab")
	}
	root := os.Getenv("LAB_ROOT")
	if root == "" {
		root = "host"
	}
	l := &Lab{
		Script: script, Root: root, Repo: repo,
		Name: fmt.Sprintf("baton-%s-%d", shortRoot(root), os.Getpid()),
	}
	base := "/var/lib/baton-labtest" // not /tmp: units may well have PrivateTmp=yes
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, nil, err
	}
	if l.Dir, err = os.MkdirTemp(base, l.Name+"-"); err != nil {
		return nil, nil, err
	}
	os.Chmod(l.Dir, 0o755)
	l.Bin = filepath.Join(l.Dir, "bin")
	r, err := startReaper(l)
	if err != nil {
		os.RemoveAll(l.Dir)
		return nil, nil, err
	}
	if err := l.build(); err != nil {
		return nil, r, err
	}
	t0 := time.Now()
	up := l.command("up")
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		return nil, r, fmt.Errorf("lab up (%s): %w", l.Root, err)
	}
	v, _, err := l.exec("", "systemctl", "--version")
	if err != nil {
		return nil, r, fmt.Errorf("systemctl --version: %w", err)
	}
	m := regexp.MustCompile(`^systemd (\d+)`).FindStringSubmatch(v)
	if m == nil {
		return nil, r, fmt.Errorf("systemctl --version: %q", v)
	}
	l.Version, _ = strconv.Atoi(m[1])
	fmt.Fprintf(os.Stderr, "labtest: lab %s (LAB_ROOT=%s, systemd %d) up in %s\n", l.Name, l.Root, l.Version, time.Since(t0).Round(time.Millisecond))
	// The lab has only loopback, and first-boot presets enable the wait-online services:
	// network-online.target (which the units want) would wait 120 s for a network that
	// never comes.
	if _, errOut, err := l.exec("", "systemctl", "mask", "systemd-networkd-wait-online.service", "NetworkManager-wait-online.service"); err != nil {
		return nil, r, fmt.Errorf("mask the wait-online services: %v: %s", err, errOut)
	}
	if err := l.installUnits(); err != nil {
		return nil, r, err
	}
	return l, r, nil
}

func shortRoot(root string) string {
	switch root {
	case "host":
		return "252"
	case "bookworm-backports":
		return "254"
	case "trixie":
		return "257"
	}
	return "dir"
}

// build compiles baton (twice, with different versions, for the upgrade tests), hello,
// probe, flood, sandbox and reach into l.Bin. Static binaries run on any LAB_ROOT.
func (l *Lab) build() error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	builds := []struct{ out, pkg, ldflags string }{
		{"baton-v1", "./cmd/baton", "-X main.version=labtest-1"},
		{"baton-v2", "./cmd/baton", "-X main.version=labtest-2"},
		{"hello", "./examples/hello", ""},
		{"probe", "./labtest/internal/probe", ""},
		{"flood", "./labtest/internal/flood", ""},
		{"sandbox", "./labtest/internal/sandbox", ""},
		{"reach", "./labtest/internal/reach", ""},
	}
	t0 := time.Now()
	for _, b := range builds {
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", b.ldflags, "-o", filepath.Join(l.Bin, b.out), b.pkg)
		cmd.Dir = l.Repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	if err := copyFile(filepath.Join(l.Bin, "baton-v1"), filepath.Join(l.Bin, "baton")); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "labtest: built baton, hello, probe, flood, sandbox, reach in %s\n", time.Since(t0).Round(time.Millisecond))
	return nil
}

// command is `lab ARGS…` for this lab.
func (l *Lab) command(args ...string) *exec.Cmd {
	cmd := exec.Command(l.Script, args...)
	cmd.Env = l.env()
	return cmd
}

// env is the environment of every lab command: ours, and the lab's settings.
func (l *Lab) env() []string {
	return append(os.Environ(), "LAB_NAME="+l.Name, "LAB_ROOT="+l.Root, "LAB_BIND="+l.Repo+" "+l.Dir)
}

// exec runs argv inside the lab with stdin, and returns its stdout and stderr. err is an
// *exec.ExitError when the command ran and failed.
func (l *Lab) exec(stdin string, argv ...string) (stdout, stderr string, err error) {
	cmd := l.command(append([]string{"exec"}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	t0 := time.Now()
	err = cmd.Run()
	if d := time.Since(t0); d > slowExec {
		fmt.Fprintf(os.Stderr, "labtest: slow: lab exec %q took %s\n", argv, d.Round(time.Millisecond))
	}
	return o.String(), e.String(), err
}

// slowExec is how long a command inside the lab may take before the run says so: the
// suite's time goes to waiting, and this shows where.
const slowExec = 2 * time.Second

// reaper is a process that outlives the test binary if it must: it waits for its stdin
// (a pipe only the test binary holds) to close, then runs `lab down` and removes the
// scratch directory. A panic, a -timeout or a signal that ends the test binary closes
// the pipe as surely as a normal end does.
type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

func startReaper(l *Lab) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c",
		// The second down removes the stopped lab's state directory.
		`cat >/dev/null; "$0" down; "$0" down >/dev/null 2>&1; case "$1" in /var/lib/baton-labtest/*) rm -rf "$1";; esac`,
		l.Script, l.Dir)
	cmd.Env = l.env()
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

// finish closes the pipe and waits for `lab down`.
func (r *reaper) finish() {
	t0 := time.Now()
	r.w.Close()
	r.cmd.Wait()
	fmt.Fprintf(os.Stderr, "labtest: lab down in %s\n", time.Since(t0).Round(time.Millisecond))
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}
