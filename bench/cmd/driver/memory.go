//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
	"github.com/baton-supervisor/baton/bench/load"
)

// The memory of a reload (issue 12): workers that each hold a ballast of heap, the way
// application servers do, and the service's peak RSS (the master and every process under
// it, sampled every 10 ms) from HUP until the old workers are gone, against its steady
// state just before: strategy "all" (every new worker beside the old ones: up to twice the
// workers) and "rolling" (surge at a time).

// ballastWorker is the worker: python3's http.server on fd 3 (a server baton's authors did
// not write), holding BALLAST_MIB MiB of written bytes, READY=1 once they are, draining on
// TERM.
const ballastWorker = `import http.server, os, signal, socket, threading
ballast = b"x" * (int(os.environ["BALLAST_MIB"]) << 20)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

srv = http.server.HTTPServer(None, Handler, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
srv.socket.setblocking(False)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
threading.Thread(target=srv.serve_forever, args=(0.05,)).start()
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
signal.sigwait({signal.SIGTERM})
srv.shutdown()
`

// memVariant is one way of replacing the workers.
type memVariant struct {
	name    string
	upgrade bool   // USR2 rather than HUP
	rollout string // the [rollout] table; "" = strategy "all"
}

var memVariants = []memVariant{
	{"reload, all", false, ""},
	{"reload, rolling, surge 1", false, "strategy = \"rolling\"\nsurge = 1\n"},
	{"reload, rolling, surge 2", false, "strategy = \"rolling\"\nsurge = 2\n"},
	{"upgrade, all", true, ""},
	{"upgrade, rolling, surge 1", true, "strategy = \"rolling\"\nsurge = 1\n"},
}

const (
	memWorkers = 8
	memBallast = 100 // MiB per worker
)

// memRun is one reload's memory.
type memRun struct {
	name            string
	steady, peak    int64 // KiB, the master and its descendants
	most            int   // the most workers seen at once
	took            time.Duration
	requests, fails int64
	err             error
}

func (d *driver) memorySection() []memRun {
	script := filepath.Join(d.work, "ballast.py")
	if err := os.WriteFile(script, []byte(ballastWorker), 0o644); err != nil {
		return []memRun{{name: "setup", err: err}}
	}
	var out []memRun
	for _, v := range memVariants {
		r := d.memReload(script, v)
		d.progress("memory, %s: steady %d MiB, peak %d MiB (%.2fx), %d workers at most, %v, %d/%d requests failed %v",
			v.name, r.steady>>10, r.peak>>10, ratio(r.peak, r.steady), r.most, r.took.Round(time.Millisecond), r.fails, r.requests, errText(r.err))
		out = append(out, r)
	}
	return out
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (d *driver) memReload(script string, v memVariant) (r memRun) {
	r.name = v.name
	command := fmt.Sprintf("command = [\"/usr/bin/python3\", %q]\nenv = { BALLAST_MIB = \"%d\" }", script, memBallast)
	b, err := d.startBaton(batonOpts{workers: memWorkers, listeners: 1, commit: "auto", command: command,
		extra: "\n[rollout]\n" + or(v.rollout, "strategy = \"all\"\n")})
	if err != nil {
		r.err = err
		return r
	}
	defer b.stop()
	ld, err := load.Start(load.Options{Addr: b.addr(), Clients: 8, Mode: load.NewConn, Duration: 5 * time.Minute, Timeout: d.timeout})
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		res := ld.Stop()
		r.requests, r.fails = res.Requests, res.FailedTotal()
	}()
	r.steady = serviceRSS(b.pid)

	var mu sync.Mutex
	masters := []int{b.pid} // the old master, then the new one of an upgrade (not its child)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			mu.Lock()
			ms := slices.Clone(masters)
			mu.Unlock()
			var rss int64
			n := 0
			for _, pid := range ms {
				rss += serviceRSS(pid)
				n += len(children(pid))
			}
			mu.Lock()
			r.peak, r.most = max(r.peak, rss), max(r.most, n)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	master, err := procs.Open(b.pid)
	if err != nil {
		r.err = err
		return r
	}
	defer master.Close()
	from := b.log.mark()
	start := time.Now()
	deadline := time.Now().Add(120 * time.Second)
	if v.upgrade {
		err = d.memUpgrade(b, master, from, deadline, func(n int) {
			mu.Lock()
			masters = append(masters, n)
			mu.Unlock()
		})
	} else {
		err = d.memReloadOnce(b, master, from, deadline)
	}
	for err == nil && len(children(b.pid)) > memWorkers {
		if time.Now().After(deadline) {
			err = fmt.Errorf("old workers still there after the reload")
		}
		time.Sleep(10 * time.Millisecond) // polling the process table for the old workers' exit
	}
	r.took = time.Since(start)
	close(stop)
	<-sampled
	r.err = err
	return r
}

func (d *driver) memReloadOnce(b *batonSvc, master *procs.Proc, from int, deadline time.Time) error {
	if err := master.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	_, done, err := b.log.wait(from, deadline, "reload complete", func(f map[string]string) bool {
		return strings.HasPrefix(f["msg"], "reload ") && f["event"] != "" && f["event"] != "reload-started"
	})
	if err == nil && done.fields["event"] != "reload-ok" {
		err = fmt.Errorf("reload: %s", done.text)
	}
	return err
}

// memUpgrade is USR2 with auto commit: it ends when the old master is gone; b then names the
// new master. started is told the new master's pid.
func (d *driver) memUpgrade(b *batonSvc, old *procs.Proc, from int, deadline time.Time, started func(int)) error {
	if err := old.Signal(syscall.SIGUSR2); err != nil {
		return err
	}
	_, up, err := b.log.wait(from, deadline, "upgrade started", msgFrom("upgrade started", b.pid))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(up.fields["new_pid"])
	if err != nil {
		return fmt.Errorf("upgrade started: no new_pid in %q", up.text)
	}
	started(n)
	if _, err := old.Wait(deadline); err != nil {
		return err
	}
	if _, _, err := b.log.wait(from, deadline, "new master in charge", msgFrom("upgrade committed: this master is in charge", n)); err != nil {
		return err
	}
	b.pid = n
	return nil
}

// serviceRSS is the RSS, in KiB, of pid and every process under it.
func serviceRSS(pid int) int64 {
	var sum int64
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if rss, _, err := memory(p); err == nil {
			sum += rss
		}
	}
	return sum
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
