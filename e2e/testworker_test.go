//go:build linux

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
//	chatty       serves HTTP as hello does, and writes a line to stdout and one to stderr
//	             for every request before it answers; drains on TERM
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
	case "chatty":
		chatty(stop)
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

// chatty serves on the first listener: every request writes one line to stdout and one to
// stderr, then answers as hello does ("pid=… generation=… worker=…"). Like most programs,
// it keeps SIGPIPE at its default: a write to a pipe nobody reads kills it. On TERM it
// drains as hello does: it closes its copy of the listener, lets the connections it has
// finish (each closes after its response), and exits. (http.Server.Shutdown alone would
// drop a request read after it began.)
func chatty(stop chan os.Signal) {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
	gen, slot := os.Getenv("BATON_GENERATION"), os.Getenv("BATON_WORKER")
	var n atomic.Int64
	var open sync.WaitGroup // connections not closed yet
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			i := n.Add(1)
			fmt.Fprintf(os.Stdout, "chatty stdout pid=%d request=%d\n", os.Getpid(), i)
			fmt.Fprintf(os.Stderr, "chatty stderr pid=%d request=%d\n", os.Getpid(), i)
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "pid=%d generation=%s worker=%s\n", os.Getpid(), gen, slot)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Done()
			}
		},
	}
	served := make(chan struct{})
	go func() { srv.Serve(l); close(served) }()
	ready()
	<-stop
	l.Close() // our copy: the socket stays open in the master, its queue for the others
	<-served  // no connection is accepted from here on
	drained := make(chan struct{})
	go func() { open.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(900 * time.Millisecond): // stop_timeout is 1s
	}
	fmt.Fprintf(os.Stderr, "chatty stopped pid=%d requests=%d\n", os.Getpid(), n.Load())
	os.Exit(0)
}
