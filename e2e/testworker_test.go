//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

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
func testWorkerMain() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
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
	default:
		fmt.Fprintln(os.Stderr, "testworker: unknown TESTWORKER")
		os.Exit(2)
	}
	<-stop
	os.Exit(0)
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
