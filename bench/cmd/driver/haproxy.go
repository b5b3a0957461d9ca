//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// haproxySvc is one HAProxy (Debian 12's 2.6) in master-worker mode, configured for
// reloads as well as 2.6 can be: a fixed "ok" on loopback with keep-alive on, and its
// master re-executed by USR2, as Debian's haproxy.service reloads it (ExecReload= is
// `kill -USR2 $MAINPID`). The master runs as under that unit (-Ws, Type=notify): in the
// foreground, the driver's child, with a notify socket of the driver's standing in for
// systemd's.
//
// One worker process with one thread per worker asked for (nbthread): HAProxy 2.5 removed
// nbproc, so 2.6 cannot run 2 worker processes; 2 threads in one process is how it uses
// 2 cores, the nearest match to baton's and nginx's 2 worker processes. A reload replaces
// that one process.
//
// HAProxy has no binary upgrade apart from its reload: USR2 makes the master re-execute
// its own binary, so a reload is also how a new binary takes over. Nor has it a
// rollback of its own: its only cycle is the reload (phases["haproxy"]).
type haproxySvc struct {
	d       *driver
	dir     string
	log     string // the master's and workers' stderr
	address string
	notify  *notifyWatch // the master's sd_notify messages (-Ws)
	pid     int          // the master: the same process across reloads (it re-executes itself)
}

// haproxyPhases are the phases of HAProxy's one cycle.
var haproxyPhases = map[string][]string{
	"reload": {"USR2 → master READY=1 (new worker forked)", "→ old worker gone"},
}

// haproxyConfig is the whole configuration. Beyond a minimal one it sets what a reload
// needs (HAProxy's defaults would fail requests on every reload):
//
//   - option idle-close-on-response: a soft-stopping worker keeps its idle keep-alive
//     connections open until their next request and answers it with
//     "Connection: close", instead of closing them at once, which races the client's
//     next request (nginx's failures; HAProxy's default since 2.4, the option restores the
//     older behaviour).
//   - close-spread-time: the old worker spreads those closes over this window, so that
//     the clients do not all reconnect at once. The driver gives it the reference
//     worker's -drain (1s by default): baton's old workers get the same window to move
//     their keep-alive clients away. In 2.6 (and HAProxy's development branch today) the
//     window also arms a timer on every front connection it takes for idle (between two
//     requests, or accepted and its request not yet read: mux_h1.c, h1_refresh_timeout),
//     and h1_timeout_task closes the connection when it fires, idle-close-on-response or
//     not: a race with the client's next request (EOF), or a 408 to a new connection's
//     first. System "haproxy-nospread" is the same configuration without the window,
//     to show what it costs.
//   - hard-stop-after: the old worker's limit, after which its connections are cut; the
//     same as baton's stop_timeout in the benchmark (30s), above close-spread-time as
//     HAProxy's documentation asks.
//   - stats socket … expose-fd listeners: the listening sockets can be handed to the
//     next worker (-x), so a reload never unbinds the port and refuses nothing. In
//     master-worker mode the master does this itself on USR2, with "-x sockpair@FD" to
//     the old worker's own socket pair (visible in the new worker's command line); the
//     stats socket is the same capability for a reload run by hand, as in Debian's
//     /etc/haproxy/haproxy.cfg.
//
// The timeouts match nginx's keepalive_timeout (65s); no log is written, as neither
// nginx (access_log off) nor hello writes one.
func haproxyConfig(dir, addr string, threads int, spread time.Duration) string {
	return fmt.Sprintf(`# baton benchmark: HAProxy on loopback, best configured for reloads.
global
    nbthread %d
    stats socket %s/admin.sock mode 600 level admin expose-fd listeners
    hard-stop-after 30s
%s
defaults
    mode http
    option idle-close-on-response
    timeout client 65s
    timeout http-keep-alive 65s
    timeout http-request 10s
    timeout connect 5s

frontend bench
    bind %s
    http-request return status 200 content-type text/plain string "ok\n"
`, threads, dir, spreadLine(spread), addr)
}

// spreadLine is the close-spread-time line of the global section; none for 0.
func spreadLine(spread time.Duration) string {
	if spread <= 0 {
		return ""
	}
	return fmt.Sprintf("    close-spread-time %dms\n", spread.Milliseconds())
}

func (d *driver) startHAProxy(threads int, spread time.Duration) (*haproxySvc, error) {
	dir, err := os.MkdirTemp(d.work, "haproxy-")
	if err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	h := &haproxySvc{d: d, dir: dir, log: filepath.Join(dir, "stderr.log"), address: addrs[0]}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(haproxyConfig(dir, h.address, threads, spread)), 0o644); err != nil {
		return nil, err
	}
	if h.notify, err = newNotifyWatch(filepath.Join(dir, "notify.sock")); err != nil {
		return nil, err
	}
	out, err := os.Create(h.log)
	if err != nil {
		h.notify.close()
		return nil, err
	}
	defer out.Close()
	// -Ws: master-worker with sd_notify, -S: the master CLI, as in Debian's unit. Absolute
	// binary path: the master re-executes argv[0] on USR2.
	cmd := exec.Command(d.haproxy, "-Ws", "-S", filepath.Join(dir, "master.sock"), "-f", conf, "-p", filepath.Join(dir, "haproxy.pid"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+h.notify.path)
	cmd.Stdout, cmd.Stderr = out, out
	if h.pid, err = d.reaper.start(cmd); err != nil {
		h.notify.close()
		return nil, err
	}
	deadline := d.deadline()
	if _, _, err = h.notify.wait(0, "READY", "1", deadline); err == nil {
		for !accepts(h.address) {
			if time.Now().After(deadline) {
				err = fmt.Errorf("%s: not accepting: %w", h.address, os.ErrDeadlineExceeded)
				break
			}
			time.Sleep(5 * time.Millisecond) // polling for the port
		}
	}
	if err != nil {
		stopMaster(h.pid, syscall.SIGTERM, time.Now().Add(5*time.Second))
		h.notify.close()
		return nil, fmt.Errorf("haproxy did not start: %w\n%s", err, h.logTail())
	}
	return h, nil
}

func (h *haproxySvc) addr() string { return h.address }
func (h *haproxySvc) mainPID() int { return h.pid }
func (h *haproxySvc) logTail() string {
	b, _ := os.ReadFile(h.log)
	return tailLines(string(b), 30)
}

// newChildren lists the live children of pid not in exclude.
func newChildren(pid int, exclude []int) []int {
	return slices.DeleteFunc(children(pid), func(c int) bool { return slices.Contains(exclude, c) })
}

// cycle is HAProxy's reload, as Debian's haproxy.service does it: USR2 to the master,
// which re-executes itself, parses the configuration, takes the listening sockets from
// the old worker (-x sockpair@FD), forks the new worker, tells the old one to stop softly
// (USR1) and sends READY=1; then the old worker finishes its connections and exits.
//
// The next USR2 must wait for READY=1, as systemd's next reload does: the master drops a
// USR2 that arrives before it is ready for it again (seen here: a reload sent as soon as
// the new worker existed was lost, and its cycle never ended).
func (h *haproxySvc) cycle(kind string) (cycle, error) {
	if kind != "reload" {
		return cycle{}, fmt.Errorf("haproxy: no cycle %q (its only one is the reload)", kind)
	}
	deadline := h.d.deadline()
	oldPIDs := children(h.pid)
	olds, err := procs.OpenAll(oldPIDs)
	if err != nil {
		return cycle{}, err
	}
	defer procs.CloseAll(olds)
	from := h.notify.count()
	c := cycle{start: time.Now()}
	if err := syscall.Kill(h.pid, syscall.SIGUSR2); err != nil {
		return c, fmt.Errorf("USR2 to haproxy master %d: %w", h.pid, err)
	}
	_, ready, err := h.notify.wait(from, "READY", "1", deadline)
	if err != nil {
		return c, err
	}
	// The new worker was forked before READY=1. The seamless reload is the point of this
	// configuration: a new worker that did not take its listeners from the old one (-x)
	// bound them anew, and the comparison would not be with HAProxy at its best.
	nw := newChildren(h.pid, oldPIDs)
	if len(nw) == 0 {
		return c, fmt.Errorf("haproxy master %d: READY=1 but no new worker", h.pid)
	}
	if args := cmdline(nw[0]); args != "" && !strings.Contains(args, " -x sockpair@") {
		return c, fmt.Errorf("haproxy worker %d started without -x sockpair@ (no socket transfer): %s", nw[0], args)
	}
	gone, err := procs.WaitAll(olds, deadline)
	if err != nil {
		return c, fmt.Errorf("old worker: %w", err)
	}
	c.ends = []time.Time{ready, latest(gone, ready)}
	return c, nil
}

// stop is USR1 to the master: a soft stop of every worker, then the master exits.
func (h *haproxySvc) stop() error {
	defer h.notify.close()
	return stopMaster(h.pid, syscall.SIGUSR1, h.d.deadline())
}

// haproxyVersion is the first line of `haproxy -v` without its date and URL, as
// "HAProxy version 2.6.12-1+deb12u4"; "" if there is none.
func haproxyVersion(out string) string {
	line, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "HAProxy" || f[1] != "version" {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// cmdline returns the command line of pid, its arguments joined by spaces.
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
}
