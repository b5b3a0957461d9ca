//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// labCtl is a systemd-lab container (../shared/systemd-lab/lab) the driver booted for the
// systemd section: systemd as PID 1 in its own PID and network namespaces, with the
// driver's binaries bound in at the same paths.
//
// However the driver ends (normally, ^C, a panic, a kill), the lab goes down: bootLab
// first starts a guardian, a shell in a session of its own that is not the driver's
// descendant, which waits for end of file on a pipe only the driver holds and then runs
// `lab down`. down does it at once and waits for it.
type labCtl struct {
	script, name, root string
	bind               []string
	log                string   // file of the lab commands' own output
	guard              *os.File // the guardian's pipe; closed by down (or the driver's death)
	bootTook, downTook time.Duration
}

// errNoLab is returned by bootLab when the lab cannot run here: the section is skipped.
var errNoLab = errors.New("systemd lab unavailable")

// bootLab starts the guardian and boots the lab. It must run while the driver is not a
// child subreaper: the container, orphaned by `lab up`, must not become the driver's
// child (the other sections end every descendant of the driver).
func bootLab(script, name, root string, bind []string, log string) (*labCtl, error) {
	if os.Getuid() != 0 {
		return nil, fmt.Errorf("%w: not root (systemd-nspawn needs root)", errNoLab)
	}
	if st, err := os.Stat(script); err != nil || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%w: no lab script at %s (-lab)", errNoLab, script)
	}
	l := &labCtl{script: script, name: name, root: root, bind: bind, log: log}
	if err := l.startGuardian(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if out, err := l.run(nil, "up"); err != nil {
		l.down()
		return nil, fmt.Errorf("%w: lab up (LAB_ROOT=%s): %v\n%s", errNoLab, root, err, lastLines(out, 20))
	}
	l.bootTook = time.Since(t0)
	return l, nil
}

// env is the environment of every lab command.
func (l *labCtl) env() []string {
	return append(os.Environ(), "LAB_NAME="+l.name, "LAB_ROOT="+l.root, "LAB_BIND="+strings.Join(l.bind, " "),
		"LAB_NET=private", "LAB_PASSENV=")
}

// command is `lab ARGS…` for this lab.
func (l *labCtl) command(args ...string) *exec.Cmd {
	cmd := exec.Command(l.script, args...)
	cmd.Env = l.env()
	return cmd
}

// startGuardian starts `( cat <&3; lab down; lab down ) &` in a session of its own, fd 3
// the read end of a pipe whose write end only the driver holds (close-on-exec). The
// outer shell exits at once, so the guardian is orphaned, and not the driver's.
func (l *labCtl) startGuardian() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	// The second down removes the stopped lab's state directory.
	cmd := exec.Command("/bin/sh", "-c", `( cat <&3 >/dev/null; "$0" down; "$0" down ) </dev/null >>"$1" 2>&1 3<&3 &`, l.script, l.log)
	cmd.Env = l.env()
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a ^C to the driver is not one to it
	if err := cmd.Run(); err != nil {
		w.Close()
		return fmt.Errorf("start the lab's guardian: %w", err)
	}
	l.guard = w
	return nil
}

// run runs `lab ARGS…` with stdin (nil: none) and returns its combined output, which
// also goes to the log. Its output goes through a file, not a pipe: a process it leaves
// behind (`lab up` leaves the container) must not keep run waiting.
func (l *labCtl) run(stdin []byte, args ...string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(l.log), "lab-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := l.command(args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	if lf, lerr := os.OpenFile(l.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); lerr == nil {
		fmt.Fprintf(lf, "$ lab %s\n%s", strings.Join(args, " "), out)
		lf.Close()
	}
	if err != nil {
		return string(out), fmt.Errorf("lab %s: %w: %s", strings.Join(args, " "), err, lastLines(string(out), 10))
	}
	return string(out), nil
}

// exec runs argv inside the lab (`lab exec`) and returns its output.
func (l *labCtl) exec(argv ...string) (string, error) {
	return l.run(nil, append([]string{"exec"}, argv...)...)
}

// writeFile writes content to path inside the lab, its directory created.
func (l *labCtl) writeFile(path, content string) error {
	_, err := l.run([]byte(content), "exec", "sh", "-c", `mkdir -p "$(dirname "$1")" && cat >"$1"`, "sh", path)
	return err
}

// down powers the lab off, waits for it, and lets the guardian go (its own `lab down`
// then finds nothing to do). Safe to call more than once.
func (l *labCtl) down() error {
	if l.guard == nil {
		return nil
	}
	t0 := time.Now()
	_, err := l.run(nil, "down")
	l.downTook = time.Since(t0)
	l.guard.Close()
	l.guard = nil
	return err
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// labLoad is bench/cmd/load running inside the lab for the length of a series: it stops
// when its standard input, a pipe the driver holds, reaches end of file.
type labLoad struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	result string // the file its JSON result goes to
	warm   chan struct{}
	done   chan error
	stderr strings.Builder // guarded by done: read only after it is closed
}

func startLabLoad(lab *labCtl, in, bin, result string, clients int, mode load.Mode, timeout time.Duration) (*labLoad, error) {
	out, err := os.Create(result)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	args := []string{"exec"}
	if in == "service" {
		// A service of its own, as a client program on the same machine would be: systemd
		// weighs its CPU against baton's service. `lab exec` alone would leave it in the
		// host's cgroup, outside the lab's, weighed against the whole container.
		args = append(args, "systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--unit=bench-load", "--")
	}
	cmd := lab.command(append(args, bin, "-addr", labAddr, "-clients", strconv.Itoa(clients), "-mode", mode.String(),
		"-duration", load.MaxDuration.String(), "-timeout", timeout.String(), "-until-eof", "-warm", "1000", "-json")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = out
	done := make(chan error, 1)
	l := &labLoad{cmd: cmd, stdin: stdin, result: result, warm: make(chan struct{}), done: done}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		warm := false
		for sc.Scan() {
			if !warm && strings.HasPrefix(sc.Text(), "load: warm") {
				warm = true
				close(l.warm)
				continue
			}
			l.stderr.WriteString(sc.Text() + "\n")
		}
		done <- cmd.Wait()
		close(done)
	}()
	return l, nil
}

// waitWarm waits until the load has made its first 1000 requests.
func (l *labLoad) waitWarm(deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-l.warm:
		return nil
	case err := <-l.done:
		l.done = closedWith(err)
		return fmt.Errorf("load in the lab ended before it was warm: %v\n%s", err, l.stderr.String())
	case <-t.C:
		return fmt.Errorf("load in the lab: not 1000 requests before the deadline; is the service up?")
	}
}

// stop closes the load's standard input and reads its result. A load that does not stop
// within grace is left to the lab's end (its PID namespace goes with the container).
func (l *labLoad) stop(grace time.Duration) (*load.Result, error) {
	l.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	var werr error
	select {
	case werr = <-l.done:
	case <-t.C:
		return nil, fmt.Errorf("load in the lab did not stop within %v", grace)
	}
	b, err := os.ReadFile(l.result)
	if err != nil {
		return nil, err
	}
	var r load.Result
	if err := json.Unmarshal(b, &r); err != nil {
		// Exit status 1 only says some request failed; anything else, with no result, is
		// the error.
		return nil, fmt.Errorf("load in the lab (%v): %w\n%s", werr, err, l.stderr.String())
	}
	return &r, nil
}

// closedWith returns a closed channel that yields err first.
func closedWith(err error) chan error {
	c := make(chan error, 1)
	c <- err
	close(c)
	return c
}
