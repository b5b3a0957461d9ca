//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// nginxSvc is one nginx (Debian's package) with its own prefix, pid file and 2 workers,
// answering a fixed "ok" on loopback with keep-alive on. It daemonizes, as under Debian's
// nginx.service (Type=forking): with "daemon off" nginx ignores USR2 as long as its parent
// is the process that started it ("the changing binary signal is ignored"). The daemon is
// re-parented to the driver, a child subreaper, as it would be to systemd.
type nginxSvc struct {
	d       *driver
	dir     string
	pidfile string
	address string
	workers int
	pid     int // the master in charge
}

// nginxConfig is the whole configuration: nginx's defaults but for paths, the worker count
// and access logging (off, as no log is written by hello either).
func nginxConfig(dir, addr string, workers int) string {
	return fmt.Sprintf(`# baton benchmark: nginx on loopback, its own prefix.
daemon on;
master_process on;
worker_processes %d;
pid %s/nginx.pid;
error_log %s/error.log notice;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;
    keepalive_timeout 65s;

    server {
        listen %s;
        location / {
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
`, workers, dir, dir, dir, dir, dir, dir, dir, addr)
}

func (d *driver) startNginx(workers int) (*nginxSvc, error) {
	dir, err := os.MkdirTemp(d.nginxBase(), "nginx-")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	n := &nginxSvc{d: d, dir: dir, pidfile: filepath.Join(dir, "nginx.pid"), address: addrs[0], workers: workers}
	conf := filepath.Join(dir, "nginx.conf")
	in := d.inNginxRoot(dir) // dir as nginx sees it
	if err := os.WriteFile(conf, []byte(nginxConfig(in, n.address, workers)), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	// Absolute binary path: nginx re-executes argv[0] on USR2.
	cmd := d.nginxCommand("-p", in+"/", "-c", filepath.Join(in, "nginx.conf"), "-e", filepath.Join(in, "error.log"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if _, err := d.reaper.start(cmd); err != nil {
		return nil, err
	}
	// The process started forks the daemon and exits; the daemon writes the pid file.
	pid, _, err := n.waitPIDFile(d.deadline(), func(int) bool { return true })
	if err == nil {
		n.pid = pid
		_, err = n.waitReady(pid, nil, d.deadline())
	}
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		if pid != 0 {
			stopMaster(pid, syscall.SIGTERM, time.Now().Add(5*time.Second))
		}
		return nil, fmt.Errorf("nginx did not start: %w\n%s", err, b)
	}
	return n, nil
}

func (n *nginxSvc) addr() string { return n.address }
func (n *nginxSvc) mainPID() int { return n.pid }
func (n *nginxSvc) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return tailLines(string(b), 30)
}

// waitReady waits until master has its worker count of live children that are not in
// exclude, and returns when. nginx has no readiness protocol: a forked worker serves.
func (n *nginxSvc) waitReady(master int, exclude []int, deadline time.Time) (time.Time, error) {
	for {
		k := 0
		for _, c := range children(master) {
			if !slices.Contains(exclude, c) {
				k++
			}
		}
		if k >= n.workers {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("nginx master %d: %d of %d workers: %w", master, k, n.workers, os.ErrDeadlineExceeded)
		}
		time.Sleep(time.Millisecond) // polling /proc: nginx tells nobody when it is ready
	}
}

// waitPIDFile waits until the pid file names a live process that satisfies ok.
func (n *nginxSvc) waitPIDFile(deadline time.Time, ok func(pid int) bool) (int, time.Time, error) {
	for {
		if pid, err := readPIDFile(n.pidfile); err == nil && ok(pid) && alive(pid) {
			return pid, time.Now(), nil
		}
		if time.Now().After(deadline) {
			return 0, time.Time{}, fmt.Errorf("nginx.pid: %w", os.ErrDeadlineExceeded)
		}
		time.Sleep(time.Millisecond) // polling a file nginx rewrites
	}
}

func (n *nginxSvc) cycle(kind string) (cycle, error) {
	switch kind {
	case "upgrade":
		return n.upgrade()
	case "reload":
		return n.reload()
	case "rollback":
		return n.rollback()
	}
	return cycle{}, fmt.Errorf("nginx: no cycle %q", kind)
}

// startNew is the first half of nginx's upgrade and rollback: USR2 to the old master, then
// the new master (named by nginx.pid) with its workers running.
func (n *nginxSvc) startNew(old *procs.Proc, deadline time.Time) (*procs.Proc, time.Time, error) {
	if err := old.Signal(syscall.SIGUSR2); err != nil {
		return nil, time.Time{}, err
	}
	nwPID, _, err := n.waitPIDFile(deadline, func(pid int) bool { return pid != old.PID })
	if err != nil {
		return nil, time.Time{}, err
	}
	nw, err := procs.Open(nwPID)
	if err != nil {
		return nil, time.Time{}, err
	}
	ready, err := n.waitReady(nwPID, nil, deadline)
	if err != nil {
		nw.Close()
		return nil, time.Time{}, err
	}
	return nw, ready, nil
}

// upgrade is nginx's documented upgrade: USR2, new master and workers up; WINCH to the old
// master, its workers gone; QUIT to the old master, gone.
func (n *nginxSvc) upgrade() (cycle, error) {
	deadline := n.d.deadline()
	old, oldWorkers, err := openMaster(n.pid)
	if err != nil {
		return cycle{}, err
	}
	defer old.Close()
	defer procs.CloseAll(oldWorkers)
	c := cycle{start: time.Now()}
	nw, ready, err := n.startNew(old, deadline)
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
	if err := old.Signal(syscall.SIGQUIT); err != nil {
		return c, err
	}
	gone, err := old.Wait(deadline)
	if err != nil {
		return c, err
	}
	c.ends = []time.Time{ready, stopped, gone}
	n.pid = nw.PID
	return c, nil
}

// reload is HUP: new workers up, old workers gone.
func (n *nginxSvc) reload() (cycle, error) {
	deadline := n.d.deadline()
	master, err := procs.Open(n.pid)
	if err != nil {
		return cycle{}, err
	}
	defer master.Close()
	oldPIDs := children(n.pid)
	olds, err := procs.OpenAll(oldPIDs)
	if err != nil {
		return cycle{}, err
	}
	defer procs.CloseAll(olds)
	c := cycle{start: time.Now()}
	if err := master.Signal(syscall.SIGHUP); err != nil {
		return c, err
	}
	ready, err := n.waitReady(n.pid, oldPIDs, deadline)
	if err != nil {
		return c, err
	}
	gone, err := procs.WaitAll(olds, deadline)
	if err != nil {
		return c, fmt.Errorf("old workers: %w", err)
	}
	c.ends = []time.Time{ready, latest(gone, ready)}
	return c, nil
}

// rollback is nginx's documented rollback: USR2, new master up; WINCH to the old master,
// its workers gone; HUP to the old master, its workers back; QUIT to the new master, gone,
// and nginx.pid naming the old master again.
func (n *nginxSvc) rollback() (cycle, error) {
	deadline := n.d.deadline()
	old, oldWorkers, err := openMaster(n.pid)
	if err != nil {
		return cycle{}, err
	}
	defer old.Close()
	defer procs.CloseAll(oldWorkers)
	c := cycle{start: time.Now()}
	nw, ready, err := n.startNew(old, deadline)
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
	if err := old.Signal(syscall.SIGHUP); err != nil {
		return c, err
	}
	back, err := n.waitReady(n.pid, []int{nw.PID}, deadline)
	if err != nil {
		return c, err
	}
	if err := nw.Signal(syscall.SIGQUIT); err != nil {
		return c, err
	}
	gone, err := nw.Wait(deadline)
	if err != nil {
		return c, err
	}
	_, restored, err := n.waitPIDFile(deadline, func(pid int) bool { return pid == old.PID })
	if err != nil {
		return c, err
	}
	c.ends = []time.Time{ready, stopped, back, latest(gone, restored)}
	return c, nil
}

// stop is QUIT (graceful shutdown) to the master in charge.
func (n *nginxSvc) stop() error {
	return stopMaster(n.pid, syscall.SIGQUIT, n.d.deadline())
}
