package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scrapeMetrics reads the metrics endpoint at addr into "name{labels}" -> value.
func scrapeMetrics(addr string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// holdKeepAlive opens n keep-alive connections to addr, makes one request on each and
// keeps them open; it returns the generation that answered each.
func holdKeepAlive(t *testing.T, addr string, n int) ([]net.Conn, []int) {
	t.Helper()
	var conns []net.Conn
	var gens []int
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := answerRE.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("unexpected answer %q", b)
		}
		g, _ := strconv.Atoi(m[2])
		conns, gens = append(conns, c), append(gens, g)
	}
	return conns, gens
}

// TestMetricsAcrossUpgrade scrapes the metrics endpoint before, during and after an
// upgrade under load, with keep-alive connections held open to the old generation: the
// generation changes, no counter goes down, the old generation's connections are counted
// from the kernel while it serves them and gone once it has drained.
func TestMetricsAcrossUpgrade(t *testing.T) {
	s := newService(t)
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := s.helloConfig(2, "") + fmt.Sprintf("\n[upgrade]\nsoak = \"2s\"\n\n[metrics]\naddress = %q\n", maddr)
	old := s.run(cfg)

	held, gens := holdKeepAlive(t, s.addr, 4)
	for _, g := range gens {
		if g != 1 {
			t.Fatalf("held connection answered by generation %d", g)
		}
	}
	before, err := scrapeMetrics(maddr)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		`baton_generation`: 1,
		`baton_workers{generation="1",state="ready"}`: 2,
		`baton_worker_starts_total`:                   2,
		`baton_upgrades_total{result="committed"}`:    0,
	} {
		if before[k] != want {
			t.Errorf("before: %s = %v, want %v", k, before[k], want)
		}
	}
	if got := before[`baton_connections{generation="1",state="established"}`]; got < 4 {
		t.Errorf("before: generation 1 holds %v established connections, want at least the 4 held", got)
	}
	info := false
	for k, v := range before {
		info = info || strings.HasPrefix(k, fmt.Sprintf(`baton_master_info{pid="%d",version=`, old)) && v == 1
	}
	if !info {
		t.Errorf("before: no baton_master_info naming the old master, pid %d", old)
	}

	// Scrape all along the upgrade, under load.
	stopLoad := s.load(4)
	var mu sync.Mutex
	var seq []map[string]float64
	var scrapeErrs []error
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			m, err := scrapeMetrics(maddr)
			mu.Lock()
			if err != nil {
				scrapeErrs = append(scrapeErrs, err)
			} else {
				seq = append(seq, m)
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // the scrape interval, not synchronisation
		}
	}()
	s.upgrade(old, 1)
	waitFor(t, 10*time.Second, func() bool {
		m, err := scrapeMetrics(maddr)
		return err == nil && m[`baton_generation`] == 1 && m[`baton_workers{generation="2",state="running"}`] == 2
	}, "the old master to show the new generation's 2 workers while it soaks")
	waitFor(t, 30*time.Second, func() bool {
		m, err := scrapeMetrics(maddr)
		return err == nil && m[`baton_generation`] == 2
	}, "the new master to serve the metrics")
	// The held connections were the old workers': they are closed by their drain.
	for i, c := range held {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("held connection %d still open after the commit", i)
		}
	}
	after, err := scrapeMetrics(maddr)
	if err != nil {
		t.Fatal(err)
	}
	close(done)
	wg.Wait()
	n, loadErrs := stopLoad()
	if len(loadErrs) > 0 {
		t.Errorf("%d of %d requests failed under load, first: %v", len(loadErrs), n, loadErrs[0])
	}
	seq = append(seq, after)

	counters := []string{
		`baton_worker_starts_total`, `baton_worker_exits_total`, `baton_worker_restarts_total`,
		`baton_upgrades_total{result="committed"}`, `baton_reloads_total{result="ok"}`,
		`baton_upgrade_phase_duration_seconds_count{phase="ready"}`,
	}
	for i := 1; i < len(seq); i++ {
		for _, k := range counters {
			if seq[i][k] < seq[i-1][k] {
				t.Errorf("scrape %d: %s went down: %v -> %v", i, k, seq[i-1][k], seq[i][k])
			}
		}
		if seq[i][`baton_generation`] < seq[i-1][`baton_generation`] {
			t.Errorf("scrape %d: the generation went back", i)
		}
	}
	for k, want := range map[string]float64{
		`baton_generation`: 2,
		`baton_workers{generation="2",state="ready"}`:               2,
		`baton_worker_starts_total`:                                 4, // the old master's 2 and the new one's 2
		`baton_upgrades_total{result="committed"}`:                  1,
		`baton_upgrade_phase_duration_seconds_count{phase="ready"}`: 1,
	} {
		if after[k] != want {
			t.Errorf("after: %s = %v, want %v", k, after[k], want)
		}
	}
	for k := range after {
		if strings.Contains(k, `generation="1"`) {
			t.Errorf("after the commit the new master still shows generation 1: %s", k)
		}
	}
	if after[`baton_last_success_timestamp_seconds{action="upgrade"}`] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last upgrade success not set: %v", after)
	}
	// Scrapes are answered across the commit: the socket never closes, the backlog holds a
	// scrape while the masters change hands.
	if len(scrapeErrs) > 0 {
		t.Errorf("%d scrapes of %d failed during the upgrade, first: %v", len(scrapeErrs), len(seq)+len(scrapeErrs), scrapeErrs[0])
	}
	s.signal(s.pid("baton.pid"), syscall.SIGQUIT)
}
