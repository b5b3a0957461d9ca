//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

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
//	errno        says READY=1, then (once the gate exists, when set) STATUS=db down and
//	             ERRNO=111, and waits for TERM
//	close-fd3    closes fd 3 (its listener), says READY=1, waits for TERM
//	spew         writes $TESTWORKER_SPEW bytes (default 2 MiB) of lines to stdout and to
//	             stderr, says READY=1, waits for TERM
//	gate         waits until the file $TESTWORKER_DIR/$TESTWORKER_GATE exists (exits 0 on
//	             TERM meanwhile), then execs its arguments: a worker slow to be ready
//	fork         runs its arguments as a child that keeps the listener (LISTEN_PID set to
//	             the child's pid through sh), says READY=1 itself, and exits at once on TERM,
//	             leaving the child (same process group) to drain
//	chatty       serves HTTP as hello does, and writes a line to stdout and one to stderr
//	             for every request before it answers; drains on TERM
//	activation   a server written for systemd, not for baton: takes its listener with
//	             go-systemd's activation.Listeners(), serves net/http ("pid=… generation=…
//	             worker=… tag=$TAG"), says nothing (ready = "started"); drains on TERM
//	activation-watchdog
//	             the same, and as a systemd service with WatchdogSec= does it with
//	             go-systemd's daemon package: READY=1 (SdNotify), then WATCHDOG=1 every half
//	             of SdWatchdogEnabled's interval, each logged ("watchdog ping n=… pid=…"),
//	             until $TESTWORKER_DIR/hang-<its pid> exists: then it serves on, silent
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
	case "errno":
		ready()
		waitGate(stop)
		notify(sdnotify.Status("db down"), "ERRNO=111")
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
	case "chatty":
		chatty(stop)
	case "activation":
		activationServer(stop, func() {})
	case "activation-watchdog":
		activationServer(stop, sdWatchdog)
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

func ready() { notify(sdnotify.Ready) }

// notify sends one datagram of state lines to $NOTIFY_SOCKET.
func notify(state ...string) {
	n, err := sdnotify.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
	if err := n.Notify(state...); err != nil {
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
// drains (serveDraining).
func chatty(stop chan os.Signal) {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
	gen, slot := os.Getenv("BATON_GENERATION"), os.Getenv("BATON_WORKER")
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		fmt.Fprintf(os.Stdout, "chatty stdout pid=%d request=%d\n", os.Getpid(), i)
		fmt.Fprintf(os.Stderr, "chatty stderr pid=%d request=%d\n", os.Getpid(), i)
		w.Header().Set("Connection", "close")
		fmt.Fprintf(w, "pid=%d generation=%s worker=%s\n", os.Getpid(), gen, slot)
	})
	serveDraining(l, h, stop, ready)
	fmt.Fprintf(os.Stderr, "chatty stopped pid=%d requests=%d\n", os.Getpid(), n.Load())
	os.Exit(0)
}

// activationServer is a Go server made for systemd socket activation, not for baton: it
// takes its listener with go-systemd's activation.Listeners(), serves net/http, says
// nothing (ready = "started"), and drains on TERM (serveDraining).
func activationServer(stop chan os.Signal, ready func()) {
	ls, err := activation.Listeners()
	if err != nil || len(ls) != 1 || ls[0] == nil {
		fmt.Fprintln(os.Stderr, "testworker: activation.Listeners:", ls, err)
		os.Exit(2)
	}
	serveDraining(ls[0], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d generation=%s worker=%s tag=%s\n", os.Getpid(),
			os.Getenv("BATON_GENERATION"), os.Getenv("BATON_WORKER"), os.Getenv("TAG"))
	}), stop, ready)
	os.Exit(0)
}

// sdWatchdog is what a Go service written for systemd does with go-systemd's daemon
// package: READY=1, then WATCHDOG=1 every half interval, for as long as it is healthy
// (here: until $TESTWORKER_DIR/hang-<pid> exists, a main loop that hangs).
func sdWatchdog() {
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok {
		fmt.Fprintln(os.Stderr, "testworker: SdNotify READY=1:", ok, err)
		os.Exit(2)
	}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		fmt.Fprintln(os.Stderr, "testworker: SdWatchdogEnabled:", d, err)
		os.Exit(2)
	}
	hang := filepath.Join(os.Getenv("TESTWORKER_DIR"), fmt.Sprintf("hang-%d", os.Getpid()))
	go func() {
		for n := 1; ; n++ {
			time.Sleep(d / 2) // the service's own pace, as systemd's docs advise
			if _, err := os.Stat(hang); err == nil {
				fmt.Fprintf(os.Stderr, "watchdog hangs pid=%d\n", os.Getpid())
				return
			}
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			fmt.Fprintf(os.Stderr, "watchdog ping n=%d pid=%d\n", n, os.Getpid())
		}
	}()
}

// serveDraining serves h on l, calls ready, and on a stop signal drains as hello does: it
// closes its copy of the listener (the socket stays open in the master, its queue for the
// others), lets the connections it has accepted finish (each closes after its response:
// the test's clients ask for it), and returns. http.Server.Shutdown alone would drop a
// request it reads after Shutdown began (net/http's conn.serve returns without a response
// when the server is shutting down): with a new connection per request under load, some
// connection accepted just before the stop signal always sends its request just after.
func serveDraining(l net.Listener, h http.Handler, stop chan os.Signal, ready func()) {
	var open sync.WaitGroup // connections not closed yet
	srv := &http.Server{
		Handler: h,
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
	l.Close()
	<-served // no connection is accepted from here on
	drained := make(chan struct{})
	go func() { open.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(900 * time.Millisecond): // stop_timeout is 1s
	}
}
