//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/sdnotify"
)

// What the fault matrix's steps do to a service and wait for: small helpers over the
// harness's own (matrix_test.go has the runner).

// write replaces the config file (the next reload, or the next new master, reads it).
func (f *fault) write(c conf) { f.writeConfig(f.render(c)) }

// wait waits for a log line of master pid that matches msg and every one of also
// (regular expressions), and returns it.
func (f *fault) wait(msg string, pid int, also ...string) string {
	f.t.Helper()
	var got string
	waitFor(f.t, 20*time.Second, func() bool {
		ls := f.linesOf(pid, append([]string{msg}, also...)...)
		if len(ls) == 0 {
			return false
		}
		got = ls[0]
		return true
	}, "a log line of pid %d matching %q %q", pid, msg, also)
	return got
}

// linesOf returns the log lines of master pid that match every one of res.
func (f *fault) linesOf(pid int, res ...string) []string {
	rs := []*regexp.Regexp{regexp.MustCompile(`\bpid=` + strconv.Itoa(pid) + `\b`)}
	for _, re := range res {
		rs = append(rs, regexp.MustCompile(re))
	}
	var out []string
	for _, l := range lines(f.log(), "msg=") {
		ok := true
		for _, re := range rs {
			ok = ok && re.MatchString(l)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// lines returns how many log lines of master pid match msg.
func (f *fault) lines(msg string, pid int) int { return len(f.linesOf(pid, msg)) }

var newPidRE = regexp.MustCompile(`\bnew_pid=(\d+)`)

// usr2 sends USR2 to old and returns the new master's pid, once the upgrade has started.
func (f *fault) usr2(old int) int {
	f.t.Helper()
	before := f.lines(`msg="upgrade started"`, old)
	f.signal(old, syscall.SIGUSR2)
	waitFor(f.t, 20*time.Second, func() bool { return f.lines(`msg="upgrade started"`, old) > before }, "the upgrade of %d to start", old)
	return f.newMaster(old)
}

// newMaster returns the new master of the last upgrade old started.
func (f *fault) newMaster(old int) int {
	ls := f.linesOf(old, `msg="upgrade started"`)
	if len(ls) == 0 {
		f.t.Fatalf("%d started no upgrade", old)
	}
	n, _ := strconv.Atoi(newPidRE.FindStringSubmatch(ls[len(ls)-1])[1])
	return n
}

// ready waits until old says its new master nw is ready.
func (f *fault) ready(old, nw int) {
	f.t.Helper()
	f.wait(`msg="new master ready"`, old, `\bnew_pid=`+strconv.Itoa(nw)+`\b`)
}

// gone waits until pid has exited (a zombie counts as gone).
func (f *fault) gone(pid int) {
	f.t.Helper()
	waitFor(f.t, 20*time.Second, func() bool { return !alive(pid) }, "%d to exit", pid)
}

func (f *fault) kill9(pid int) {
	f.t.Helper()
	f.signal(pid, syscall.SIGKILL)
	f.gone(pid)
}

// pause stops pid (SIGSTOP) and waits until it is stopped; resume continues it.
func (f *fault) pause(pid int) {
	f.t.Helper()
	f.signal(pid, syscall.SIGSTOP)
	waitFor(f.t, 20*time.Second, func() bool { st, err := procStat(pid); return err == nil && st.state == 'T' }, "%d to stop", pid)
}

func (f *fault) resume(pid int) {
	f.t.Helper()
	f.signal(pid, syscall.SIGCONT)
	waitFor(f.t, 20*time.Second, func() bool { st, err := procStat(pid); return err != nil || st.state != 'T' }, "%d to continue", pid)
}

// open opens the gate name of workers in mode gate.
func (f *fault) open(name string) {
	f.t.Helper()
	if err := os.WriteFile(f.path(name), nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// pidFiles checks that baton.pid names main and baton.pid.oldbin names old (0: none).
func (f *fault) pidFiles(main, old int) {
	f.t.Helper()
	if got := f.pidOf("baton.pid"); got != main {
		f.t.Errorf("baton.pid names %d, want %d", got, main)
	}
	if got := f.pidOf("baton.pid.oldbin"); got != old {
		f.t.Errorf("baton.pid.oldbin names %d, want %d", got, old)
	}
}

// hold opens a connection that sends nothing and waits until a worker of master has
// accepted it: that worker, once asked to stop, waits for the connection's first request
// (hello's drain) until release closes it. Make it before the workers of another master
// accept on the socket.
func (f *fault) hold(master int) (release func()) {
	f.t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	local := c.LocalAddr().(*net.TCPAddr).Port
	waitFor(f.t, 20*time.Second, func() bool {
		ino := serverSocket(f.port, local)
		if ino == "" || ino == "0" {
			return false // not accepted yet: no inode
		}
		for _, w := range workersOf(master) {
			fds, _ := fdsOf(w)
			for _, target := range fds {
				if target == "socket:["+ino+"]" {
					return true
				}
			}
		}
		return false
	}, "a worker of %d to accept the held connection", master)
	return func() { c.Close() }
}

// serverSocket returns the inode of the server's end of the loopback TCP connection from
// client port to server port, from /proc/net/tcp ("0" until a process accepted it).
func serverSocket(server, client int) string {
	b, _ := os.ReadFile("/proc/net/tcp")
	local := fmt.Sprintf("0100007F:%04X", server)
	remote := fmt.Sprintf("0100007F:%04X", client)
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		if len(fs) > 9 && fs[1] == local && fs[2] == remote {
			return fs[9]
		}
	}
	return ""
}

// workersStarted waits until master has logged n workers started.
func (f *fault) workersStarted(master, n int) {
	f.t.Helper()
	waitFor(f.t, 20*time.Second, func() bool { return f.lines(`msg="worker started"`, master) >= n }, "%d workers of %d to start", n, master)
}

// serving returns how many live workers of master have said (hello's own log line) that
// they serve.
func (f *fault) serving(master int) int {
	n := 0
	log := f.log()
	for _, w := range workersOf(master) {
		if len(lines(log, "msg=serving pid="+strconv.Itoa(w)+" ")) > 0 {
			n++
		}
	}
	return n
}

// reloads returns the log lines of master that end a reload: complete, failed, refused.
func (f *fault) reloads(master int) []string {
	return f.linesOf(master, `msg="reload (complete|failed|refused)`)
}

// hup sends HUP to master and returns the line that ends that reload.
func (f *fault) hup(master int) string {
	f.t.Helper()
	n := len(f.reloads(master))
	f.signal(master, syscall.SIGHUP)
	var got []string
	waitFor(f.t, 20*time.Second, func() bool { got = f.reloads(master); return len(got) > n }, "the reload of %d to end", master)
	return got[n]
}

// victim is a file a planted symlink points at; untouched checks that nothing wrote,
// renamed or removed it.
func (f *fault) victim() (path string, untouched func()) {
	f.t.Helper()
	defer func() { f.untouched = untouched }()
	dir := f.path("elsewhere")
	os.Mkdir(dir, 0o755)
	path = dir + "/victim"
	if err := os.WriteFile(path, []byte("precious\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	before, _ := os.Stat(path)
	return path, func() {
		f.t.Helper()
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != "precious\n" || fi.Mode() != before.Mode() || !fi.ModTime().Equal(before.ModTime()) {
			f.t.Errorf("the symlink's target was touched: %q %v", b, err)
		}
	}
}

// plant replaces name in the service directory with a symlink to target.
func (f *fault) plant(name, target string) {
	f.t.Helper()
	os.Remove(f.path(name))
	if err := os.Symlink(target, f.path(name)); err != nil {
		f.t.Fatal(err)
	}
}

// notifySocket returns the NOTIFY_SOCKET a live worker of master was given.
func (f *fault) notifySocket(master int) string {
	f.t.Helper()
	return workerNotifySocket(f.t, master)
}

// workerNotifySocket returns the NOTIFY_SOCKET a live worker of master was given, waiting
// for one to show it.
func workerNotifySocket(t *testing.T, master int) string {
	t.Helper()
	var addr string
	waitFor(t, 20*time.Second, func() bool {
		for _, w := range workersOf(master) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", w))
			for _, kv := range strings.Split(string(b), "\x00") {
				if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
					addr = v
					return true
				}
			}
		}
		return false
	}, "a worker of %d to show its NOTIFY_SOCKET", master)
	return addr
}

// flood sends datagrams to the notify socket at addr from this process (not a worker)
// until stop is called, which returns how many were sent. withFDs attaches two fds to
// each.
func (f *fault) flood(addr, msg string, withFDs bool) (stop func() int) {
	f.t.Helper()
	n, err := sdnotify.Open(addr)
	if err != nil {
		f.t.Fatal(err)
	}
	fds := []int{0, 0}
	done := make(chan struct{})
	count := make(chan int, 1)
	go func() {
		sent := 0
		defer func() { n.Close(); count <- sent }()
		for {
			select {
			case <-done:
				return
			default:
			}
			var err error
			if withFDs {
				err = n.NotifyWithFDs(fds, msg)
			} else {
				err = n.Notify(msg)
			}
			if err != nil {
				return // the master went away
			}
			sent++
		}
	}()
	return func() int { close(done); return <-count }
}

// dialControl connects to the control socket.
func (f *fault) dialControl() net.Conn {
	f.t.Helper()
	c, err := net.Dial("unix", f.path("baton.sock"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// setNofile sets the soft RLIMIT_NOFILE of pid (the hard one stays: lowering it could not
// be undone without CAP_SYS_RESOURCE) and returns the old soft limit.
func setNofile(t *testing.T, pid int, n uint64) uint64 {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
	return old.Cur
}

// storm sends sig to pid again and again, as fast as it can, until the master has logged
// msg n times.
func (f *fault) storm(pid int, sig syscall.Signal, msg string, n int) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.lines(msg, pid) < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d did not log %q %d times under a storm of %v", pid, msg, n, sig)
		}
		syscall.Kill(pid, sig)
	}
}
