//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// batonSvc is one standalone baton, with the reference worker, in its own directory.
type batonSvc struct {
	d       *driver
	dir     string
	pidfile string
	addrs   []string
	workers int
	log     *logWatch
	pid     int // the master in charge
}

type batonOpts struct {
	workers   int
	listeners int
	commit    string // "auto" (upgrade, reload) or "manual" (rollback)
	soak      string // upgrade.soak; "" = "0s"
	command   string // the [worker] command line; "" = the reference worker
	extra     string // TOML appended to the config
	// conf, if set, writes the config instead of batonConfig (a section's own).
	conf func(pidfile string, addrs []string) string
}

// batonConfig is the TOML configuration of a benchmarked baton: every listener served by
// every worker, auto commit without soak (the cycle ends when the old master is gone).
func batonConfig(pidfile, hello, drain string, addrs []string, workers int, commit, soak string, gomaxprocs int) string {
	return batonConfigWith(pidfile, fmt.Sprintf("command = [%q, \"-drain\", %q, \"-names\", \"*\"]", hello, drain), addrs, workers, commit, soak, gomaxprocs)
}

// batonConfigWith is batonConfig with the worker's command line given.
func batonConfigWith(pidfile, command string, addrs []string, workers int, commit, soak string, gomaxprocs int) string {
	if soak == "" {
		soak = "0s"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pidfile = %q\n", pidfile)
	for i, a := range addrs {
		name := "http"
		if i > 0 {
			name = "l" + strconv.Itoa(i)
		}
		fmt.Fprintf(&b, "\n[[listen]]\nname = %q\naddress = %q\n", name, a)
	}
	fmt.Fprintf(&b, `
[worker]
%s
count = %d
start_timeout = "60s"
stop_timeout = "30s"
%s
[upgrade]
commit = %q
soak = %q
timeout = "120s"
`, command, workers, workerEnv(gomaxprocs), commit, soak)
	return b.String()
}

// workerEnv is the config line that sets the workers' GOMAXPROCS, if one is asked.
func workerEnv(gomaxprocs int) string {
	if gomaxprocs <= 0 {
		return ""
	}
	return fmt.Sprintf("env = { GOMAXPROCS = \"%d\" }\n", gomaxprocs)
}

func (d *driver) startBaton(o batonOpts) (*batonSvc, error) {
	dir, err := os.MkdirTemp(d.work, "baton-")
	if err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(o.listeners)
	if err != nil {
		return nil, err
	}
	b := &batonSvc{d: d, dir: dir, pidfile: filepath.Join(dir, "baton.pid"), addrs: addrs, workers: o.workers}
	conf := filepath.Join(dir, "baton.toml")
	text := batonConfig(b.pidfile, d.hello, d.drain.String(), addrs, o.workers, o.commit, o.soak, d.workerProcs)
	if o.command != "" {
		text = batonConfigWith(b.pidfile, o.command, addrs, o.workers, o.commit, o.soak, d.workerProcs)
	}
	if o.conf != nil {
		text = o.conf(b.pidfile, addrs)
	}
	if err := os.WriteFile(conf, []byte(text+o.extra), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "baton.log"))
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd := exec.Command(d.baton, "run", "-c", conf)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = pw, pw
	pid, err := d.reaper.start(cmd)
	pw.Close()
	b.log = newLogWatch(pr, logFile)
	if err != nil {
		pr.Close()
		return nil, err
	}
	b.pid = pid
	if _, _, err := b.log.wait(0, d.deadline(), "workers ready", msgFrom("workers ready", pid)); err != nil {
		b.stop()
		return nil, fmt.Errorf("baton did not start: %w\n%s", err, b.log.tail(20))
	}
	return b, nil
}

func (b *batonSvc) addr() string    { return b.addrs[0] }
func (b *batonSvc) mainPID() int    { return b.pid }
func (b *batonSvc) logTail() string { return b.log.tail(30) }

func (b *batonSvc) cycle(kind string) (cycle, error) {
	switch kind {
	case "upgrade":
		return b.upgrade()
	case "reload":
		return b.reload()
	case "rollback":
		return b.rollback()
	}
	return cycle{}, fmt.Errorf("baton: no cycle %q", kind)
}

// upgrade is USR2 with auto commit: new master ready, old workers drained and commit, old
// master gone (and the new one says it is in charge).
func (b *batonSvc) upgrade() (cycle, error) {
	deadline := b.d.deadline()
	old, err := procs.Open(b.pid)
	if err != nil {
		return cycle{}, err
	}
	defer old.Close()
	from := b.log.mark()
	c := cycle{start: time.Now()}
	if err := old.Signal(syscall.SIGUSR2); err != nil {
		return c, err
	}
	i, ready, err := b.log.wait(from, deadline, "new master ready", msgFrom("new master ready", b.pid))
	if err != nil {
		return c, err
	}
	nw, err := strconv.Atoi(ready.fields["new_pid"])
	if err != nil {
		return c, fmt.Errorf("new master ready: no new_pid in %q", ready.text)
	}
	_, committed, err := b.log.wait(i, deadline, "upgrade committed", msgFrom("upgrade committed; the old master exits", b.pid))
	if err != nil {
		return c, err
	}
	gone, err := old.Wait(deadline)
	if err != nil {
		return c, err
	}
	_, inCharge, err := b.log.wait(from, deadline, "new master in charge", msgFrom("upgrade committed: this master is in charge", nw))
	if err != nil {
		return c, err
	}
	c.ends = []time.Time{ready.at, committed.at, latest(gone, inCharge.at)}
	c.detail = readyDetail(b.log.between(from, i), nw, c.start, ready.at)
	b.pid = nw
	if got, err := readPIDFile(b.pidfile); err != nil || got != nw {
		// The new master wrote it before it was ready; nothing may have changed it since.
		return c, fmt.Errorf("after the upgrade baton.pid names %d (%v), want the new master %d", got, err, nw)
	}
	return c, nil
}

// reload is HUP: new workers ready and the old ones told to go, then the old ones gone.
func (b *batonSvc) reload() (cycle, error) {
	deadline := b.d.deadline()
	olds, err := procs.OpenAll(children(b.pid))
	if err != nil {
		return cycle{}, err
	}
	defer procs.CloseAll(olds)
	master, err := procs.Open(b.pid)
	if err != nil {
		return cycle{}, err
	}
	defer master.Close()
	from := b.log.mark()
	c := cycle{start: time.Now()}
	if err := master.Signal(syscall.SIGHUP); err != nil {
		return c, err
	}
	_, done, err := b.log.wait(from, deadline, "reload complete", msgFrom("reload complete", b.pid))
	if err != nil {
		return c, err
	}
	gone, err := procs.WaitAll(olds, deadline)
	if err != nil {
		return c, fmt.Errorf("old workers: %w", err)
	}
	c.ends = []time.Time{done.at, latest(gone, done.at)}
	return c, nil
}

// rollback is nginx's rollback with commit = "manual": USR2, new master ready; WINCH to
// the old master, its workers gone; HUP to the old master, its workers ready again; QUIT
// to the new master, gone, and the old master in charge again.
func (b *batonSvc) rollback() (cycle, error) {
	deadline := b.d.deadline()
	old, oldWorkers, err := openMaster(b.pid)
	if err != nil {
		return cycle{}, err
	}
	defer old.Close()
	defer procs.CloseAll(oldWorkers)
	from := b.log.mark()
	c := cycle{start: time.Now()}
	if err := old.Signal(syscall.SIGUSR2); err != nil {
		return c, err
	}
	_, ready, err := b.log.wait(from, deadline, "new master ready", msgFrom("new master ready", b.pid))
	if err != nil {
		return c, err
	}
	nwPID, err := strconv.Atoi(ready.fields["new_pid"])
	if err != nil {
		return c, fmt.Errorf("new master ready: no new_pid in %q", ready.text)
	}
	nw, err := procs.Open(nwPID)
	if err != nil {
		return c, err
	}
	defer nw.Close()

	if err := old.Signal(syscall.SIGWINCH); err != nil {
		return c, err
	}
	stopped, err := procs.WaitAll(oldWorkers, deadline)
	if err != nil {
		return c, fmt.Errorf("old workers after WINCH: %w", err)
	}

	from = b.log.mark()
	if err := old.Signal(syscall.SIGHUP); err != nil {
		return c, err
	}
	_, back, err := b.log.wait(from, deadline, "old workers ready", msgFrom("workers ready", b.pid))
	if err != nil {
		return c, err
	}

	from = b.log.mark()
	if err := nw.Signal(syscall.SIGQUIT); err != nil {
		return c, err
	}
	gone, err := nw.Wait(deadline)
	if err != nil {
		return c, err
	}
	_, rolled, err := b.log.wait(from, deadline, "upgrade rolled back", msgPrefixFrom("upgrade rolled back", b.pid))
	if err != nil {
		return c, err
	}
	// The old master restores the pid file just after it logs the rollback.
	restored, err := waitPIDFile(b.pidfile, b.pid, deadline)
	if err != nil {
		return c, fmt.Errorf("after the rollback: %w", err)
	}
	c.ends = []time.Time{ready.at, stopped, back.at, latest(gone, latest(rolled.at, restored))}
	return c, nil
}

// stop is QUIT (graceful stop) to the master in charge; TERM if it is not gone in time.
func (b *batonSvc) stop() error {
	return stopMaster(b.pid, syscall.SIGQUIT, b.d.deadline())
}
