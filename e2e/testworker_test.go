//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/sdnotify"
)

// testWorkerMain is a worker with a misbehaviour, chosen by TESTWORKER:
//
//	crash        exits 3 at once
//	ignore-term  says READY=1, then ignores every stop signal
//	fds          writes its open fds to $TESTWORKER_DIR/fds-<pid>, says READY=1, exits 0 on TERM
//	never-ready  says nothing and waits for TERM
//	stubborn     says nothing and ignores every stop signal
//	record-stop  says READY=1, and on a stop signal writes its name to
//	             $TESTWORKER_DIR/stop-<pid> and exits 0
//	ready-exit   says READY=1 and exits 0 at once (once $TESTWORKER_DIR/$TESTWORKER_GATE
//	             exists, when that is set)
//	close-fd3    closes fd 3 (its listener), says READY=1, waits for TERM
//	spew         writes $TESTWORKER_SPEW bytes (default 2 MiB) of lines to stdout and to
//	             stderr, says READY=1, waits for TERM
//	gate         waits until the file $TESTWORKER_DIR/$TESTWORKER_GATE exists (exits 0 on
//	             TERM meanwhile), then execs its arguments: a worker slow to be ready
//	fork         runs its arguments as a child that keeps the listener (LISTEN_PID set to
//	             the child's pid through sh), says READY=1 itself, and exits at once on TERM,
//	             leaving the child (same process group) to drain
//
// With arguments (a command: the reference worker), a worker whose BATON_WORKER is not
// $TESTWORKER_SLOT (when set) execs them at once and misbehaves in no way.
func testWorkerMain() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
	args := os.Args[1:]
	if slot := os.Getenv("TESTWORKER_SLOT"); slot != "" && slot != os.Getenv("BATON_WORKER") && len(args) > 0 {
		execArgs(args)
	}
	switch os.Getenv("TESTWORKER") {
	case "crash":
		os.Exit(3)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
		ready()
		select {}
	case "fds":
		writeFDs()
		ready()
	case "never-ready":
	case "stubborn":
		signal.Ignore(syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
		select {}
	case "record-stop":
		ready()
		sig := <-stop
		os.WriteFile(filepath.Join(os.Getenv("TESTWORKER_DIR"), fmt.Sprintf("stop-%d", os.Getpid())), []byte(sig.String()), 0o644)
		os.Exit(0)
	case "ready-exit":
		ready()
		waitGate(stop)
		os.Exit(0)
	case "close-fd3":
		syscall.Close(3)
		ready()
	case "spew":
		spew()
		ready()
	case "gate":
		waitGate(stop)
		execArgs(args)
	case "fork":
		cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.ExtraFiles = []*os.File{os.NewFile(3, "listener")}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testworker:", err)
			os.Exit(2)
		}
		ready()
	default:
		fmt.Fprintln(os.Stderr, "testworker: unknown TESTWORKER")
		os.Exit(2)
	}
	<-stop
	os.Exit(0)
}

// waitGate returns once the file $TESTWORKER_DIR/$TESTWORKER_GATE exists (at once if
// TESTWORKER_GATE is not set); a stop signal meanwhile makes the worker exit 0.
func waitGate(stop chan os.Signal) {
	name := os.Getenv("TESTWORKER_GATE")
	if name == "" {
		return
	}
	gate := filepath.Join(os.Getenv("TESTWORKER_DIR"), name)
	for {
		if _, err := os.Stat(gate); err == nil {
			return
		}
		select {
		case <-stop:
			os.Exit(0)
		case <-time.After(10 * time.Millisecond): // the worker's own pace, not the test's
		}
	}
}

// execArgs replaces this process with its arguments: the pid (and so the worker, its
// READY=1 and its LISTEN_PID) stays the same.
func execArgs(args []string) {
	err := syscall.Exec(args[0], args, os.Environ())
	fmt.Fprintln(os.Stderr, "testworker: exec:", err)
	os.Exit(2)
}

func spew() {
	n := 2 << 20
	fmt.Sscan(os.Getenv("TESTWORKER_SPEW"), &n)
	line := strings.Repeat("spew ", 19) + "\n"
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		w := bufio.NewWriterSize(f, 64<<10)
		for i := 0; i < n; i += len(line) {
			w.WriteString(line)
		}
		w.Flush()
	}
}

func ready() {
	n, err := sdnotify.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
	if err := n.Notify(sdnotify.Ready); err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
	n.Close()
}

// writeFDs records "fd target" lines for every fd open at start, less the directory
// being read.
func writeFDs() {
	dir := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	ents, _ := os.ReadDir(dir)
	var lines []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || target == dir {
			continue
		}
		lines = append(lines, e.Name()+" "+target)
	}
	sort.Strings(lines)
	out := filepath.Join(os.Getenv("TESTWORKER_DIR"), fmt.Sprintf("fds-%d", os.Getpid()))
	os.WriteFile(out, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
