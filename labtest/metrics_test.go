//go:build lab && linux

package labtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// series is one line of the Prometheus exposition text: name{labels} value.
type series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// key is the series' name and labels, the labels sorted: the same series in two scrapes
// has the same key.
func (s series) key() string {
	if len(s.Labels) == 0 {
		return s.Name
	}
	names := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = k + "=" + strconv.Quote(s.Labels[k])
	}
	return s.Name + "{" + strings.Join(names, ",") + "}"
}

// scrape is one page of the metrics endpoint, parsed.
type scrape []series

// parseExposition parses the text format's sample lines (comments and blank lines are
// skipped; no timestamps: baton writes none).
func parseExposition(text string) (scrape, error) {
	var out scrape
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSeries(line)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSeries(line string) (series, error) {
	s := series{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no name")
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			name, rest, ok := strings.Cut(line, `="`)
			if !ok || name == "" {
				return s, fmt.Errorf("bad label at %q", line)
			}
			var v strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default: // \\ and \"
						v.WriteByte(rest[j])
					}
					continue
				}
				v.WriteByte(rest[j])
			}
			if j == len(rest) {
				return s, fmt.Errorf("unterminated value of label %s", name)
			}
			s.Labels[name] = v.String()
			line = strings.TrimPrefix(rest[j+1:], ",")
		}
		line = line[1:]
	}
	v, ok := strings.CutPrefix(line, " ")
	if !ok {
		return s, fmt.Errorf("no value")
	}
	var err error
	if s.Value, err = strconv.ParseFloat(v, 64); err != nil {
		return s, err
	}
	return s, nil
}

// get returns the value of the series with this name and exactly these labels (pairs of
// name, value).
func (p scrape) get(name string, labels ...string) (float64, bool) {
	for _, s := range p {
		if s.Name != name || len(s.Labels) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if v, ok := s.Labels[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if match {
			return s.Value, true
		}
	}
	return 0, false
}

// val is get's value, 0 when the series is absent.
func (p scrape) val(name string, labels ...string) float64 {
	v, _ := p.get(name, labels...)
	return v
}

// counters returns every counter series (…_total, and the histograms' …_count, …_sum and
// …_bucket, which never go down either) by key.
func (p scrape) counters() map[string]float64 {
	m := map[string]float64{}
	for _, s := range p {
		for _, suffix := range []string{"_total", "_count", "_sum", "_bucket"} {
			if strings.HasSuffix(s.Name, suffix) {
				m[s.key()] = s.Value
			}
		}
	}
	return m
}

// master is the master_info series' pid and version.
func (p scrape) master() (pid int, version string) {
	for _, s := range p {
		if s.Name == "baton_master_info" {
			pid, _ = strconv.Atoi(s.Labels["pid"])
			return pid, s.Labels["version"]
		}
	}
	return 0, ""
}

// generations returns the generations any series is labelled with.
func (p scrape) generations() []int {
	var gs []int
	for _, s := range p {
		if g, ok := s.Labels["generation"]; ok {
			n, _ := strconv.Atoi(g)
			if !slices.Contains(gs, n) {
				gs = append(gs, n)
			}
		}
	}
	slices.Sort(gs)
	return gs
}

// brief is the part of a scrape a failure message shows.
func (p scrape) brief() string {
	var b []string
	for _, s := range p {
		switch s.Name {
		case "baton_generation", "baton_master_info", "baton_workers", "baton_connections", "baton_upgrades_total":
			b = append(b, fmt.Sprintf("%s %v", s.key(), s.Value))
		}
	}
	return strings.Join(b, "; ")
}

// scrapeMetrics scrapes http://addr/metrics from inside the lab (probe -raw). Safe from any
// goroutine: it fails no test, it returns the error.
func scrapeMetrics(addr string) (scrape, error) {
	out, errOut, err := lab.exec("", filepath.Join(lab.Bin, "probe"), "-raw", "-timeout", "10s", "http://"+addr+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("probe: %v: %s", err, errOut)
	}
	out = strings.TrimRight(out, "\n")
	i := strings.LastIndexByte(out, '\n')
	var r probeResult
	if err := json.Unmarshal([]byte(out[i+1:]), &r); err != nil {
		return nil, fmt.Errorf("probe: no summary line in %q", out)
	}
	if r.OK != 1 {
		return nil, fmt.Errorf("scrape failed: %v", r.Errors)
	}
	if i < 0 {
		return nil, fmt.Errorf("empty page")
	}
	return parseExposition(out[:i])
}

// mustScrape waits until a scrape of addr satisfies ok and returns it.
func mustScrape(t testing.TB, addr, what string, ok func(scrape) bool) scrape {
	t.Helper()
	var p scrape
	waitFor(t, 20*time.Second, what, func() (bool, string) {
		var err error
		if p, err = scrapeMetrics(addr); err != nil {
			return false, err.Error()
		}
		return ok(p), p.brief()
	})
	return p
}

// scraper scrapes an endpoint again and again until finish, as Prometheus would.
type scraper struct {
	stop, done chan struct{}
	mu         sync.Mutex
	pages      []scrape
	errs       []error
}

func startScraper(addr string) *scraper {
	s := &scraper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			p, err := scrapeMetrics(addr)
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.pages = append(s.pages, p)
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond): // the scrape interval, not synchronisation
			}
		}
	}()
	return s
}

// finish stops the scraper and returns its pages in order, and its failed scrapes.
func (s *scraper) finish() ([]scrape, []error) {
	close(s.stop)
	<-s.done
	return s.pages, s.errs
}

// (issue 9) The metrics endpoint across an upgrade under systemd. `[metrics]` on a port
// of its own, commit = "manual", a keep-alive client that sends requests on one connection
// all along, and scrapes every 50 ms from before USR2 to after the commit:
//
//   - before: generation 1, master_info the first master (labtest-1), 2 workers ready, the
//     client's connection counted as generation 1's one established connection;
//   - while the new master waits for its commit: the old master answers (generation 1, its
//     pid), and shows the new master's 2 workers as generation 2 `running`; the connection
//     still generation 1's, none generation 2's;
//   - while the old master commits, one old worker held with SIGSTOP (the other one held
//     the connection, drained and exited): generation 1 is still shown, 1 worker stopping,
//     0 connections in any state; the client's new connection is generation 2's;
//   - after: generation 2, master_info the new master (labtest-2, systemd's MainPID), 2
//     workers ready, no series of generation 1; upgrades_total{result="committed"} went up
//     by exactly 1, worker starts 2 → 4, exits 0 → 2;
//   - in every scrape, in order: no counter series went down or vanished, the generation
//     and master went old → new only; no scrape failed; the client had no failed request.
func TestMetricsAcrossUpgrade(t *testing.T) {
	const maddr = "127.0.0.1:18171"
	in := newInstance(t, roleSocket, "met", 18170)
	if in.Control == "" {
		t.Skipf("%s has no RuntimeDirectory=", in.Unit.Name)
	}
	in.conf.Commit = "manual"
	in.conf.Extra = fmt.Sprintf("[metrics]\naddress = %q", maddr)
	c0 := cursor(t)
	in.start()
	old := in.mainPID()
	oldWorkers := in.waitWorkers(c0, old, 2)

	// One connection, kept alive: a request after another on it, from before the upgrade
	// until after the commit.
	client := startProbe(t, "-keepalive", "-timeout", "30s", "-until", stopArg, "http://"+in.HTTP+"/")
	line := client.waitLine(t, 10*time.Second, "an answer from generation 1", func(l string) bool {
		s, ok := strings.CutPrefix(l, "body ")
		b, ok2 := parseBody(s)
		return ok && ok2 && b.Generation == 1
	})
	heldBy, _ := parseBody(strings.TrimPrefix(line, "body "))
	if !slices.Contains(oldWorkers, heldBy.PID) {
		t.Fatalf("the connection is served by pid %d, not one of the workers %v", heldBy.PID, oldWorkers)
	}

	before := mustScrape(t, maddr, "the first master's metrics", func(p scrape) bool {
		return p.val("baton_workers", "generation", "1", "state", "ready") == 2
	})
	t.Logf("before: %s", before.brief())
	if pid, v := before.master(); pid != old || v != "labtest-1" {
		t.Errorf("before: master_info pid %d version %q, want %d labtest-1", pid, v, old)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"baton_generation", nil, 1},
		{"baton_connections", []string{"generation", "1", "state", "established"}, 1},
		{"baton_worker_starts_total", nil, 2},
		{"baton_worker_exits_total", nil, 0},
		{"baton_upgrades_total", []string{"result", "committed"}, 0},
	} {
		if got, ok := before.get(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("before: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}

	scr := startScraper(maddr)
	swapBaton(t, "baton-v2")
	c1 := cursor(t)
	newPID, newWorkers := in.upgradeReady(c1, old)

	// The new master waits for its commit: the old one still answers the scrapes.
	during := mustScrape(t, maddr, "the old master showing the new generation's 2 workers", func(p scrape) bool {
		return p.val("baton_workers", "generation", "2", "state", "running") == 2
	})
	t.Logf("during: %s", during.brief())
	if pid, v := during.master(); pid != old || v != "labtest-1" {
		t.Errorf("during: master_info pid %d version %q, want the old master %d labtest-1", pid, v, old)
	}
	if m := in.mainPID(); m != old {
		t.Errorf("during: MainPID %d, want the old master %d", m, old)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"baton_generation", nil, 1},
		{"baton_workers", []string{"generation", "1", "state", "ready"}, 2},
		{"baton_connections", []string{"generation", "1", "state", "established"}, 1},
		{"baton_connections", []string{"generation", "2", "state", "established"}, 0},
		{"baton_upgrades_total", []string{"result", "committed"}, 0},
		{"baton_upgrade_phase_duration_seconds_count", []string{"phase", "ready"}, 1},
	} {
		if got, ok := during.get(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("during: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}

	// The commit waits for the old worker that does not hold the connection; the other
	// one drains it (the client reconnects, to generation 2) and exits.
	held := oldWorkers[0]
	if held == heldBy.PID {
		held = oldWorkers[1]
	}
	signal(t, "STOP", held)
	c2 := cursor(t)
	if out, errOut, rc := runRC(t, filepath.Join(lab.Bin, "baton"), "commit", "--socket", in.Control); rc != 0 {
		t.Fatalf("baton commit: exit %d: %s%s", rc, out, errOut)
	}
	waitJournal(t, 10*time.Second, in.Name, c2, "the old master commits", func(es []entry) bool {
		return slices.ContainsFunc(withMsg(es, "committing the upgrade: old workers drain"), func(e entry) bool { return e.AttrInt("pid") == old })
	})
	client.waitLine(t, 10*time.Second, "the client's answers from generation 2", func(l string) bool {
		s, ok := strings.CutPrefix(l, "body ")
		b, ok2 := parseBody(s)
		return ok && ok2 && b.Generation == 2 && slices.Contains(newWorkers, b.PID)
	})
	drained := mustScrape(t, maddr, "generation 1 drained to 0 connections, its held worker stopping", func(p scrape) bool {
		if p.val("baton_generation") != 1 {
			return false
		}
		var workers, conns float64
		for _, s := range p {
			if s.Labels["generation"] == "1" {
				switch s.Name {
				case "baton_workers":
					workers += s.Value
				case "baton_connections":
					conns += s.Value
				}
			}
		}
		return workers == 1 && p.val("baton_workers", "generation", "1", "state", "stopping") == 1 && conns == 0
	})
	t.Logf("committing: %s", drained.brief())
	if pid, _ := drained.master(); pid != old {
		t.Errorf("while the old master commits: master_info pid %d, want %d", pid, old)
	}
	if got := drained.val("baton_connections", "generation", "2", "state", "established"); got != 1 {
		t.Errorf("while the old master commits: generation 2 holds %v established connections, want the client's 1", got)
	}
	if !alive(t, old) {
		t.Fatalf("the old master %d exited while its worker %d was held: the scrape was not during the commit", old, held)
	}
	signal(t, "CONT", held)
	in.waitMainPID(newPID)

	after := mustScrape(t, maddr, "the new master's metrics", func(p scrape) bool {
		return p.val("baton_generation") == 2
	})
	in.waitExited(c1, oldWorkers)
	waitGone(t, 10*time.Second, old)
	pages, errs := scr.finish()
	client.stopNoFailures(t, "the keep-alive client's requests across the upgrade")

	t.Logf("after: %s", after.brief())
	if pid, v := after.master(); pid != newPID || v != "labtest-2" {
		t.Errorf("after: master_info pid %d version %q, want the new master %d labtest-2", pid, v, newPID)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"baton_workers", []string{"generation", "2", "state", "ready"}, 2},
		{"baton_upgrades_total", []string{"result", "committed"}, before.val("baton_upgrades_total", "result", "committed") + 1},
		{"baton_upgrades_total", []string{"result", "rolled_back"}, 0},
		{"baton_worker_starts_total", nil, 4}, // the old master's 2 and the new one's 2
		{"baton_worker_exits_total", nil, 2},  // the old workers, counted by the old master
		{"baton_worker_restarts_total", nil, 0},
		{"baton_upgrade_phase_duration_seconds_count", []string{"phase", "commit"}, 1},
	} {
		if got, ok := after.get(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("after: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if gs := after.generations(); !slices.Equal(gs, []int{2}) {
		t.Errorf("after the commit, series of generations %v, want 2 only: %s", gs, after.brief())
	}
	if _, ok := after.get("baton_last_success_timestamp_seconds", "action", "upgrade"); !ok {
		t.Errorf("after: no baton_last_success_timestamp_seconds{action=\"upgrade\"}")
	}

	// Every scrape, in order: the endpoint always answered, counters only went up, the
	// generation and the master changed once, old to new.
	for _, err := range errs {
		t.Errorf("a scrape during the upgrade failed: %v", err)
	}
	pages = append(append([]scrape{before}, pages...), after)
	masters := map[int]bool{}
	for i := 1; i < len(pages); i++ {
		prev, cur := pages[i-1].counters(), pages[i].counters()
		for _, k := range slices.Sorted(maps.Keys(prev)) {
			v := prev[k]
			if w, ok := cur[k]; !ok || w < v {
				t.Errorf("scrape %d of %d: counter %s went %v -> %v (present %v)", i, len(pages), k, v, w, ok)
			}
		}
		if g0, g1 := pages[i-1].val("baton_generation"), pages[i].val("baton_generation"); g1 < g0 {
			t.Errorf("scrape %d: the generation went back %v -> %v", i, g0, g1)
		}
	}
	for _, p := range pages {
		pid, _ := p.master()
		masters[pid] = true
		want := map[int]float64{old: 1, newPID: 2}[pid]
		if g := p.val("baton_generation"); want == 0 || g != want {
			t.Errorf("a scrape by master %d shows generation %v (old %d, new %d)", pid, g, old, newPID)
		}
	}
	if !masters[old] || !masters[newPID] || len(masters) != 2 {
		t.Errorf("scrapes answered by masters %v, want the old %d and the new %d", masters, old, newPID)
	}
	t.Logf("%d scrapes across the upgrade, %d failed", len(pages)-2, len(errs))
}
