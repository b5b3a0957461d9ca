//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baton-supervisor/baton/bench/load"
	"github.com/baton-supervisor/baton/config"
)

func TestParseFields(t *testing.T) {
	tests := []struct {
		name string
		line string
		want map[string]string
	}{
		{
			"slog line with quoted message",
			`time=2026-01-01T00:00:00.000Z level=INFO msg="new master ready" generation=1 pid=42 new_pid=43 took=55ms`,
			map[string]string{"level": "INFO", "msg": "new master ready", "pid": "42", "new_pid": "43", "took": "55ms"},
		},
		{
			"escaped quote in a value",
			`msg="say \"hi\"" pid=7`,
			map[string]string{"msg": `say "hi"`, "pid": "7"},
		},
		{
			"words that are not pairs are skipped",
			`reaper: started 12 pid=3`,
			map[string]string{"pid": "3"},
		},
		{
			"the first of a repeated key wins",
			`pid=1 pid=2`,
			map[string]string{"pid": "1"},
		},
		{"empty", ``, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseFields(tc.line)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			if len(tc.want) == 0 && len(got) != 0 {
				t.Errorf("got %v, want nothing", got)
			}
		})
	}
}

func TestMsgFromMatchesThePidExactly(t *testing.T) {
	match := msgFrom("worker ready", 12)
	tests := []struct {
		line string
		want bool
	}{
		{`msg="worker ready" pid=12 worker_pid=99`, true},
		{`msg="worker ready" pid=123`, false},
		{`msg="worker ready" worker_pid=12 pid=5`, false},
		{`msg="workers ready" pid=12`, false},
	}
	for _, tc := range tests {
		if got := match(parseFields(tc.line)); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.line, got, tc.want)
		}
	}
}

func TestLogWatchWait(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	copyTo, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	w := newLogWatch(pr, copyTo)
	io.WriteString(pw, "msg=a pid=1\nmsg=b pid=1\n")
	i, l, err := w.wait(0, time.Now().Add(10*time.Second), "b", msgFrom("b", 1))
	if err != nil || i != 1 || l.fields["msg"] != "b" {
		t.Fatalf("wait = %d, %q, %v; want line 1, b", i, l.text, err)
	}
	// A line written later is waited for; lines before from are not seen.
	go io.WriteString(pw, "msg=a pid=1\n")
	i, _, err = w.wait(2, time.Now().Add(10*time.Second), "a again", msgFrom("a", 1))
	if err != nil || i != 2 {
		t.Fatalf("wait = %d, %v; want line 2", i, err)
	}
	pw.Close()
	if _, _, err := w.wait(3, time.Now().Add(10*time.Second), "c", msgFrom("c", 1)); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("wait after end of stream: %v, want an end-of-log error", err)
	}
	if got := len(w.between(0, 10)); got != 3 {
		t.Errorf("between(0, 10) returned %d lines, want 3", got)
	}
}

func TestAttribute(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cs := []cycle{
		{start: at(0), ends: []time.Time{at(10), at(20)}},
		{start: at(100), ends: []time.Time{at(110), at(120)}},
	}
	fs := []load.Failure{
		{At: at(5)},   // cycle 1, phase 1
		{At: at(10)},  // a phase's end belongs to it
		{At: at(15)},  // cycle 1, phase 2
		{At: at(50)},  // between
		{At: at(119)}, // cycle 2, phase 2
		{At: at(200)}, // after the last
	}
	got := attribute(cs, 2, fs)
	want := []int64{2, 2, 2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("attribute = %v, want %v", got, want)
		}
	}
	if n, p := phaseOf(cs, at(105)); n != 1 || p != 0 {
		t.Errorf("phaseOf(105ms) = %d, %d; want cycle 1, phase 0", n, p)
	}
}

func TestPercentiles(t *testing.T) {
	var ds durations
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{95, 95 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0, 1 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := ds.pct(tc.p); got != tc.want {
			t.Errorf("pct(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := (durations{}).pct(50); got != 0 {
		t.Errorf("pct of nothing = %v, want 0", got)
	}
}

func TestReadyDetail(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	line := func(ms int, text string) logLine { return logLine{at: at(ms), text: text, fields: parseFields(text)} }
	lines := []logLine{
		line(1, `msg="signal received" pid=10`),
		line(5, `msg="new master started by upgrade" pid=20`),
		line(7, `msg="worker started" pid=20 worker_pid=31`),
		line(8, `msg="worker started" pid=20 worker_pid=32`),
		line(9, `msg=serving pid=31`),
		line(12, `msg="worker ready" pid=20 worker_pid=31`),
		line(14, `msg="worker ready" pid=20 worker_pid=32`),
	}
	got := readyDetail(lines, 20, t0, at(15))
	want := []time.Time{at(5), at(8), at(14), at(15)}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("step %d at %v, want %v", i, got[i].Sub(t0), want[i].Sub(t0))
		}
	}
	// Missing steps take the time of the step before.
	got = readyDetail(lines[:2], 20, t0, at(15))
	if !got[1].Equal(at(5)) || !got[2].Equal(at(5)) {
		t.Errorf("missing steps: %v", got)
	}
}

func TestBatonConfigParses(t *testing.T) {
	dir := t.TempDir()
	addrs := []string{"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"}
	text := batonConfig(filepath.Join(dir, "baton.pid"), "/bin/hello", "1s", addrs, 4, "manual", "", 0)
	c, err := config.Parse(filepath.Join(dir, "baton.toml"), []byte(text))
	if err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, text)
	}
	if len(c.Listeners) != 3 || c.Listeners[0].Name != "http" || c.Listeners[2].Address != "127.0.0.1:1003" {
		t.Errorf("listeners %+v", c.Listeners)
	}
	if c.Worker.Count != 4 || c.Upgrade.Commit != "manual" || c.Upgrade.Soak != 0 {
		t.Errorf("worker count %d, commit %q, soak %v", c.Worker.Count, c.Upgrade.Commit, c.Upgrade.Soak)
	}
	if got := strings.Join(c.Worker.Command, " "); got != "/bin/hello -drain 1s -names *" {
		t.Errorf("command %q", got)
	}
}

func TestNginxConfigIsValid(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed")
		}
		nginx = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(dir, "127.0.0.1:1", 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

func TestIntList(t *testing.T) {
	got, err := intList("1, 4,16")
	if err != nil || len(got) != 3 || got[2] != 16 {
		t.Errorf("intList = %v, %v", got, err)
	}
	for _, bad := range []string{"0", "x", "1,-2"} {
		if _, err := intList(bad); err == nil {
			t.Errorf("intList(%q) succeeded", bad)
		}
	}
}

func TestLabBatonConfigParses(t *testing.T) {
	// No [[listen]]: the listener comes from the socket unit, and config.Parse must still
	// accept the file (baton check runs it in ExecStartPre=).
	text := labBatonConfig("/bin/hello", "1s", 2, 0)
	c, err := config.Parse("/etc/baton/bench.toml", []byte(text))
	if err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, text)
	}
	if len(c.Listeners) != 0 || c.Worker.Count != 2 || c.Upgrade.Commit != "auto" || c.Upgrade.Soak != 0 {
		t.Errorf("listeners %d, workers %d, commit %q, soak %v; want 0, 2, auto, 0", len(c.Listeners), c.Worker.Count, c.Upgrade.Commit, c.Upgrade.Soak)
	}
}

func TestUnitCyclesKeepsCompleteCycles(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	in := `{"unit":"u","kind":"reload","phases":["a","b"],"cycles":[` +
		`{"start":"2026-11-22T03:00:00Z","ends":["2026-11-22T03:00:00.1Z","2026-11-22T03:00:00.15Z"]},` +
		`{"start":"2026-11-22T03:00:01Z","ends":["2026-11-22T03:00:01.1Z"]}],"error":"cycle 2: boom"}`
	var u unitCycles
	if err := json.Unmarshal([]byte(in), &u); err != nil {
		t.Fatal(err)
	}
	cs := u.cycles()
	if len(cs) != 1 || u.Error != "cycle 2: boom" {
		t.Fatalf("%d cycles, error %q; want the 1 complete cycle and the error", len(cs), u.Error)
	}
	tests := []struct {
		name string
		end  int
		want time.Duration
	}{
		{"to the end of phase 0 (systemctl reload)", 0, 100 * time.Millisecond},
		{"to the end of phase 1 (old workers gone)", 1, 150 * time.Millisecond},
		{"a phase the cycle lacks counts nothing", 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cycleTimes(cs, tc.end).pct(50); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if !cs[0].start.Equal(t0) {
		t.Errorf("start %v, want %v", cs[0].start, t0)
	}
}

func TestWriteSystemd(t *testing.T) {
	d := &driver{clients: 64, workers: 2, drain: time.Second, gap: 50 * time.Millisecond, labRoot: "host", modes: []load.Mode{load.KeepAlive}}
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	standalone := &seriesResult{system: "baton", kind: "reload", mode: load.KeepAlive,
		cycles: []cycle{{start: t0, ends: []time.Time{at(42), at(55)}}}}
	lab := &seriesResult{system: "baton-systemd", kind: "reload", mode: load.KeepAlive, phases: []string{"reload", "gone"},
		cycles: []cycle{{start: t0, ends: []time.Time{at(90), at(105)}}}, load: &load.Result{Requests: 10, OK: 10}, failedIn: []int64{0, 0, 0}}
	tests := []struct {
		name string
		sr   *systemdRun
		want []string
	}{
		{"skipped says why", &systemdRun{skipped: "not root"}, []string{"Skipped: not root."}},
		{"a series beside the standalone one", &systemdRun{version: "systemd 252", series: []*seriesResult{lab}},
			[]string{"| reload | keep-alive | 1 | 10 | **0** |", "| 90.0 ms | 90.0 ms | 42.0 ms |", "| reload | keep-alive | gone | 15.0 ms |"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := &report{d: d, series: []*seriesResult{standalone}, systemd: tc.sr}
			var b strings.Builder
			rep.writeSystemd(&b)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// The long-lived section's configs: its stop_timeout and stop_spread, and hello told not to
// pace in the rows where it should not.
func TestLongConfigParses(t *testing.T) {
	dir := t.TempDir()
	d := &driver{hello: "/bin/hello", drain: time.Second, llStopTimeout: 20 * time.Second, llSpread: 10 * time.Second}
	for _, r := range []longRun{{stopSpread: 10 * time.Second, workerPaces: true}, {}} {
		text := d.longConfig(filepath.Join(dir, "baton.pid"), "127.0.0.1:1001", &r)
		c, err := config.Parse(filepath.Join(dir, "baton.toml"), []byte(text))
		if err != nil {
			t.Fatalf("config does not parse: %v\n%s", err, text)
		}
		paces := !strings.Contains(strings.Join(c.Worker.Command, " "), "-close-spread 0s")
		if c.Worker.StopSpread != r.stopSpread || c.Worker.StopTimeout != 20*time.Second || paces != r.workerPaces || c.Worker.Count != 2 {
			t.Errorf("stop_spread %v, stop_timeout %v, hello paces %v, %d workers; want %v, 20s, %v, 2\n%s",
				c.Worker.StopSpread, c.Worker.StopTimeout, paces, c.Worker.Count, r.stopSpread, r.workerPaces, text)
		}
	}
	if got := helloSpread(d); got != 11*time.Second { // 20 - 2 - 1 - 6
		t.Errorf("hello's close spread %v, want 11s", got)
	}
}

func TestParseNotify(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want map[string]string
	}{
		{"HAProxy's ready", "READY=1\nMAINPID=42", map[string]string{"READY": "1", "MAINPID": "42"}},
		{"trailing newline", "RELOADING=1\n", map[string]string{"RELOADING": "1"}},
		{"value with =", "STATUS=a=b", map[string]string{"STATUS": "a=b"}},
		{"the last of a repeated key wins", "READY=0\nREADY=1", map[string]string{"READY": "1"}},
		{"lines without = or key are skipped", "garbage\n=1\nREADY=1", map[string]string{"READY": "1"}},
		{"empty", "", map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseNotify(tc.msg)
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestNotifyWatchWait(t *testing.T) {
	n, err := newNotifyWatch(filepath.Join(t.TempDir(), "notify.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	c, err := net.Dial("unixgram", n.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(msg string) {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	send("READY=1\nMAINPID=1")
	i, _, err := n.wait(0, "READY", "1", time.Now().Add(10*time.Second))
	if err != nil || i != 0 {
		t.Fatalf("wait = %d, %v; want message 0", i, err)
	}
	// From 1 on, the first READY=1 is not seen again: the reload's is waited for.
	send("RELOADING=1")
	go c.Write([]byte("READY=1"))
	i, _, err = n.wait(1, "READY", "1", time.Now().Add(10*time.Second))
	if err != nil || i != 2 {
		t.Fatalf("wait after a reload = %d, %v; want message 2", i, err)
	}
	if _, _, err := n.wait(3, "READY", "1", time.Now()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("wait with nothing more to come: %v, want a deadline error", err)
	}
}

func TestHAProxyVersion(t *testing.T) {
	tests := []struct{ out, want string }{
		{"HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\nStatus: long-term supported branch", "HAProxy version 2.6.12-1+deb12u4"},
		{"HA-Proxy version 1.8.19 2019/02/11\n", ""}, // not a HAProxy this driver knows how to run
		{"", ""},
		{"HAProxy version", ""},
	}
	for _, tc := range tests {
		if got := haproxyVersion(tc.out); got != tc.want {
			t.Errorf("haproxyVersion(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

func TestHAProxyConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		spread time.Duration
		want   []string
		absent []string
	}{
		{"with close-spread-time", time.Second,
			[]string{"nbthread 2", "expose-fd listeners", "hard-stop-after 30s", "close-spread-time 1000ms", "option idle-close-on-response", "bind 127.0.0.1:1\n"},
			nil},
		{"without", 0, []string{"option idle-close-on-response", "hard-stop-after 30s"}, []string{"close-spread-time"}},
	}
	haproxy, lookErr := exec.LookPath("haproxy")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := haproxyConfig(dir, "127.0.0.1:1", 2, tc.spread)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("config lacks %q:\n%s", w, text)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(text, a) {
					t.Errorf("config has %q:\n%s", a, text)
				}
			}
			if lookErr != nil {
				t.Skip("haproxy is not installed: the config is not checked by haproxy -c")
			}
			conf := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(haproxy, "-c", "-f", conf).CombinedOutput(); err != nil {
				t.Errorf("haproxy -c: %v\n%s", err, out)
			}
		})
	}
}

// TestHog starts a hog of 2 busy loops and stops it: every process of it is gone. The
// test process is made a child subreaper, as the driver is, so that the loops, orphaned
// when their shell dies, are its children and reaped here, by pid (a reaper of every
// child would take the children of the other tests).
func TestHog(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skip("no child subreaper:", err)
	}
	d := &driver{reaper: &reaper{kick: make(chan struct{}, 1)}, stepTimeout: 30 * time.Second}
	h, err := d.startHog(2)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{h.leader.PID}
	for _, p := range h.loops {
		pids = append(pids, p.PID)
	}
	defer func() {
		for _, pid := range pids {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		}
	}()
	if len(h.loops) != 2 {
		t.Errorf("%d busy loops, want 2", len(h.loops))
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Errorf("hog process %d not running", pid)
		}
	}
	u := h.stop()
	if u.err != nil || u.loops != 2 {
		t.Errorf("stop: %v, %d loops; want no error, 2 loops", u.err, u.loops)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("hog process %d still running after stop", pid)
		}
	}
}

func TestWriteStarvation(t *testing.T) {
	d := &driver{clients: 64, hogs: 2, modes: []load.Mode{load.KeepAlive}}
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	mk := func(hog *hogUsage, end int, failed int64) *seriesResult {
		r := &seriesResult{system: "haproxy", kind: "reload", mode: load.KeepAlive, phases: haproxyPhases["reload"], hog: hog,
			cycles: []cycle{{start: t0, ends: []time.Time{at(end / 2), at(end)}}},
			load:   &load.Result{Requests: 1000}, failedIn: []int64{0, failed, 0}}
		r.load.Failed[load.EOF] = failed
		return r
	}
	starved := mk(&hogUsage{loops: 2, wall: 10 * time.Second, cpu: time.Duration(runtime.NumCPU()) * 5 * time.Second}, 300, 3)
	rep := &report{d: d, series: []*seriesResult{mk(nil, 40, 0)}, starved: []*seriesResult{starved}}
	var b strings.Builder
	rep.writeStarvation(&b)
	for _, w := range []string{
		"| haproxy | reload | keep-alive | 1 | 1000 | **3** | 300 ms | 300 ms | 300 ms | 50% | 1000, 0, 40.0 ms, 40.0 ms |",
		"| haproxy | reload | keep-alive | → old worker gone | 150 ms |",
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, b.String())
		}
	}
	if !strings.Contains(b.String(), "its autogroup at nice ?") {
		t.Errorf("report does not say the autogroup nice was not read:\n%s", b.String())
	}
	if starved.label() != "haproxy+hog" {
		t.Errorf("label %q, want haproxy+hog", starved.label())
	}
}

func TestAutogroupNice(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/autogroup-689 nice 0\n", "0"},
		{"/autogroup-12 nice -10", "-10"},
		{"/autogroup-12 nice x", ""},
		{"", ""},
		{"nice 0", ""},
	}
	for _, tc := range tests {
		if got := autogroupNice(tc.in); got != tc.want {
			t.Errorf("autogroupNice(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestInNginxRoot(t *testing.T) {
	tests := []struct{ root, path, want string }{
		{"", "/tmp/bench/nginx-1", "/tmp/bench/nginx-1"},
		{"/srv/trixie", "/srv/trixie/tmp/nginx-1", "/tmp/nginx-1"},
		{"/srv/trixie/", "/srv/trixie/tmp/nginx-1", "/tmp/nginx-1"},
	}
	for _, tc := range tests {
		d := &driver{nginxRoot: tc.root}
		if got := d.inNginxRoot(tc.path); got != tc.want {
			t.Errorf("root %q: inNginxRoot(%q) = %q, want %q", tc.root, tc.path, got, tc.want)
		}
	}
}
