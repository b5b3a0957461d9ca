//go:build linux

package metrics

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loopbackConns opens n connections to a listener on addr and accepts them; the test
// process holds both ends. It returns the client ends and the server ends.
func loopbackConns(t *testing.T, network, addr string, n int) (clients, servers []net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer ln.Close()
	for range n {
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		clients, servers = append(clients, c), append(servers, s)
		t.Cleanup(func() { c.Close(); s.Close() })
	}
	return clients, servers
}

// waitCounts polls Connections until want holds for generation 1 (the test process), or
// fails at the deadline.
func waitCounts(t *testing.T, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := Connections(map[int][]int{1: {os.Getpid()}})
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, st := range TCPStates {
			ok = ok && got[1][st] == want[st]
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections of this process = %v, want %v", got[1], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectionsLoopback(t *testing.T) {
	waitCounts(t, map[string]int{}) // nothing else of this test holds TCP connections
	clients, _ := loopbackConns(t, "tcp4", "127.0.0.1:0", 3)
	loopbackConns(t, "tcp6", "[::1]:0", 2) // skipped without IPv6 loopback
	want := map[string]int{"established": 6}
	if _, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		want["established"] = 10
	}
	waitCounts(t, want)

	// The client closes: its end is orphaned (no fd, no one's), the server's end, still
	// held, waits in CLOSE_WAIT.
	clients[0].Close()
	want["established"] -= 2
	want["close_wait"] = 1
	waitCounts(t, want)
}

func TestConnectionsOtherGenerations(t *testing.T) {
	got, err := Connections(map[int][]int{1: nil, 2: {1 << 30}}) // no workers; one long gone
	if err != nil {
		t.Fatal(err)
	}
	for g := 1; g <= 2; g++ {
		for _, st := range TCPStates {
			if got[g][st] != 0 {
				t.Errorf("generation %d: %s = %d, want 0", g, st, got[g][st])
			}
		}
	}
}

func TestChildrenAndDescendants(t *testing.T) {
	// sh starts sleep as its child: sh is our child, sleep our grandchild.
	cmd := exec.Command("sh", "-c", "sleep 60 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var line [32]byte
	n, _ := out.Read(line[:])
	grandchild := strings.TrimSpace(string(line[:n]))

	if kids := Children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("Children(self) = %v, want it to hold %d", kids, cmd.Process.Pid)
	}
	all := descendants([]int{cmd.Process.Pid})
	if !slices.Contains(all, cmd.Process.Pid) || !slices.ContainsFunc(all, func(p int) bool { return strconv.Itoa(p) == grandchild }) {
		t.Errorf("descendants(sh) = %v, want sh and its child %s", all, grandchild)
	}
	if got := Children(1 << 30); got != nil {
		t.Errorf("Children of no process = %v, want none", got)
	}
}

func scrape(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestHandler(t *testing.T) {
	var pub Publisher
	h := Handler(&pub, "/metrics", slog.New(slog.DiscardHandler))
	c := Counts{WorkerStarts: 5, WorkerExits: 1}
	Count(&c.Reloads, ResultOK)
	Count(&c.Upgrades, ResultRolledBack)
	Count(&c.Rollbacks, "requested")
	c.Succeeded(ActionReload, time.Unix(1700000000, 0))
	c.Observe(PhaseReload, 300*time.Millisecond)
	pub.Publish(&Snapshot{Generation: 3, PID: 42, Version: "v1.2", Workers: []Worker{{PID: 1 << 30, State: "ready"}, {PID: 1<<30 + 1, State: "starting"}}, Counts: c})

	code, body := scrape(t, h, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`baton_generation 3`,
		`baton_master_info{pid="42",version="v1.2"} 1`,
		`baton_workers{generation="3",state="ready"} 1`,
		`baton_workers{generation="3",state="starting"} 1`,
		`baton_workers{generation="3",state="stopping"} 0`,
		`baton_worker_starts_total 5`,
		`baton_worker_exits_total 1`,
		`baton_reloads_total{result="ok"} 1`,
		`baton_reloads_total{result="failed"} 0`,
		`baton_upgrades_total{result="rolled_back"} 1`,
		`baton_upgrades_total{result="committed"} 0`,
		`baton_rollbacks_total{why="requested"} 1`,
		`baton_last_success_timestamp_seconds{action="reload"} 1.7e+09`,
		`baton_reload_duration_seconds_bucket{le="0.25"} 0`,
		`baton_reload_duration_seconds_bucket{le="0.5"} 1`,
		`baton_reload_duration_seconds_count 1`,
		`baton_upgrade_phase_duration_seconds_count{phase="ready"} 0`,
		`baton_connections{generation="3",state="established"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "go_") || strings.Contains(body, "process_") {
		t.Errorf("scrape has runtime metrics of whichever master serves:\n%s", body)
	}
	if code, _ := scrape(t, h, "POST", "/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
	if code, _ := scrape(t, h, "GET", "/other"); code != http.StatusNotFound {
		t.Errorf("GET /other: %d, want 404", code)
	}
}

func TestCountsAdd(t *testing.T) {
	old := Counts{WorkerStarts: 4, WorkerRestarts: 2}
	Count(&old.Reloads, ResultOK)
	Count(&old.Upgrades, ResultCommitted)
	old.Succeeded(ActionUpgrade, time.Unix(200, 0))
	old.Observe(PhaseUpgradeReady, time.Second)
	foreign := &Histogram{Bounds: []float64{1}, Counts: []uint64{1, 1}, Sum: 3} // another version's buckets
	old.Phases[PhaseReload] = foreign

	var c Counts
	c.WorkerStarts = 2
	c.Succeeded(ActionUpgrade, time.Unix(100, 0))
	c.Observe(PhaseUpgradeReady, 2*time.Second)
	c.Add(&old)
	if c.WorkerStarts != 6 || c.WorkerRestarts != 2 || c.Reloads[ResultOK] != 1 || c.Upgrades[ResultCommitted] != 1 {
		t.Errorf("after Add: %+v", c)
	}
	if c.LastSuccess[ActionUpgrade] != 200 {
		t.Errorf("last upgrade success = %v, want the later one, 200", c.LastSuccess[ActionUpgrade])
	}
	if h := c.Phases[PhaseUpgradeReady]; h.Count() != 2 || h.Sum != 3 {
		t.Errorf("upgrade_ready histogram = %+v, want 2 observations summing to 3", h)
	}
	if h := c.Phases[PhaseReload]; h != nil {
		t.Errorf("a histogram with other buckets was merged: %+v", h)
	}
	cl := c.Clone()
	c.Phases[PhaseUpgradeReady].Observe(1)
	Count(&c.Reloads, ResultOK)
	if cl.Phases[PhaseUpgradeReady].Count() != 2 || cl.Reloads[ResultOK] != 1 {
		t.Errorf("Clone shares state with the original")
	}
	c.Add(nil) // a hand-over without counts
}

func TestServerBounds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var pub Publisher
	pub.Publish(&Snapshot{Generation: 1})
	s := Serve(ln, Handler(&pub, "/metrics", slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler))
	defer s.Wait()
	defer s.Stop()
	// maxConns idle connections that send nothing hold every slot; the next scrape waits in
	// the backlog and is served once one of them is closed.
	var idle []net.Conn
	for range maxConns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a scrape was served past %d connections (err %v)", maxConns, err)
	case <-time.After(200 * time.Millisecond):
	}
	idle[0].Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	for _, c := range idle[1:] {
		c.Close()
	}
	s.Stop()
	s.Stop() // twice is fine
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Errorf("still accepting after Stop")
	}
	s.Wait()
}
