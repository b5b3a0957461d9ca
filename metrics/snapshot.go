package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what the master loop publishes after each event: everything a scrape shows
// but the connections, which are read from the kernel at scrape time.
type Snapshot struct {
	Generation int
	PID        int
	Version    string
	Workers    []Worker
	// NewMaster is the pid of the new master while this master's upgrade is in flight (0:
	// none). Its workers, generation Generation+1, are its children.
	NewMaster int
	Counts    Counts
}

// Worker is one worker process of the master.
type Worker struct {
	PID   int
	State string // starting, ready, stopping, lingering
}

// Publisher hands the loop's snapshots to the scrapes. Publish and Load are safe from any
// goroutine; a scrape never waits for the loop.
type Publisher struct{ p atomic.Pointer[Snapshot] }

// Publish makes s the snapshot scrapes see. s must not change afterwards.
func (p *Publisher) Publish(s *Snapshot) { p.p.Store(s) }

// Load returns the last snapshot published, or nil.
func (p *Publisher) Load() *Snapshot { return p.p.Load() }

// collector turns the last snapshot into metrics, counting connections as it goes.
type collector struct {
	pub   *Publisher
	conns func(gens map[int][]int) (map[int]map[string]int, error)

	info, generation, workers, connDesc, starts, exits, restarts, watchdogs *prometheus.Desc
	reloads, upgrades, rollbacks, lastSuccess, upgradeDur, reloadDur        *prometheus.Desc
}

func newCollector(pub *Publisher) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("baton_"+name, help, labels, nil)
	}
	return &collector{
		pub:         pub,
		conns:       Connections,
		info:        d("master_info", "The master in charge: its version and pid (always 1).", "version", "pid"),
		generation:  d("generation", "The generation of the master in charge (1 for the service's first master, +1 per upgrade)."),
		workers:     d("workers", "Worker processes by generation and state (a new master's workers, seen from the old master during an upgrade: state \"running\").", "generation", "state"),
		connDesc:    d("connections", "TCP connections held by the processes of each generation's workers, read from the kernel (sock_diag), by TCP state.", "generation", "state"),
		starts:      d("worker_starts_total", "Worker processes started."),
		exits:       d("worker_exits_total", "Worker processes that exited, for whatever reason."),
		restarts:    d("worker_restarts_total", "Worker restarts after a crash or a failed start."),
		watchdogs:   d("worker_watchdog_failures_total", "Workers stopped by their watchdog ([worker] watchdog): no WATCHDOG=1 in time, or WATCHDOG=trigger."),
		reloads:     d("reloads_total", "Reloads by result: ok, failed, refused.", "result"),
		upgrades:    d("upgrades_total", "Upgrades by result: committed, rolled_back, failed (the new master could not be started).", "result"),
		rollbacks:   d("rollbacks_total", "Upgrades rolled back, by why: requested, timeout, hand_over, new_master_exited.", "why"),
		lastSuccess: d("last_success_timestamp_seconds", "When each action (reload, upgrade) last succeeded, in seconds since the epoch.", "action"),
		upgradeDur:  d("upgrade_phase_duration_seconds", "Upgrade phases: ready (started to the new master's workers ready), commit (ready to committed).", "phase"),
		reloadDur:   d("reload_duration_seconds", "Reloads from their start to every new worker ready."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.generation, c.workers, c.connDesc, c.starts, c.exits, c.restarts, c.watchdogs,
		c.reloads, c.upgrades, c.rollbacks, c.lastSuccess, c.upgradeDur, c.reloadDur} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.pub.Load()
	if s == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gen := strconv.Itoa(s.Generation)
	gauge(c.info, 1, s.Version, strconv.Itoa(s.PID))
	gauge(c.generation, float64(s.Generation))

	byState := map[string]int{}
	var pids []int
	for _, w := range s.Workers {
		byState[w.State]++
		pids = append(pids, w.PID)
	}
	for _, st := range []string{"starting", "ready", "stopping", "lingering"} {
		gauge(c.workers, float64(byState[st]), gen, st)
	}

	counter(c.starts, s.Counts.WorkerStarts)
	counter(c.exits, s.Counts.WorkerExits)
	counter(c.restarts, s.Counts.WorkerRestarts)
	counter(c.watchdogs, s.Counts.WorkerWatchdogs)
	for _, r := range []string{ResultOK, ResultFailed, ResultRefused} {
		counter(c.reloads, s.Counts.Reloads[r], r)
	}
	for _, r := range []string{ResultCommitted, ResultRolledBack, ResultFailed} {
		counter(c.upgrades, s.Counts.Upgrades[r], r)
	}
	for why, n := range s.Counts.Rollbacks {
		counter(c.rollbacks, n, why)
	}
	for action, t := range s.Counts.LastSuccess {
		gauge(c.lastSuccess, t, action)
	}
	hist := func(d *prometheus.Desc, h *Histogram, labels ...string) {
		if h == nil {
			h = NewHistogram()
		}
		buckets := make(map[float64]uint64, len(h.Bounds))
		var cum uint64
		for i, b := range h.Bounds {
			cum += h.Counts[i]
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(d, h.Count(), h.Sum, buckets, labels...)
	}
	hist(c.upgradeDur, s.Counts.Phases[PhaseUpgradeReady], "ready")
	hist(c.upgradeDur, s.Counts.Phases[PhaseUpgradeCommit], "commit")
	hist(c.reloadDur, s.Counts.Phases[PhaseReload])

	gens := map[int][]int{s.Generation: pids}
	if s.NewMaster != 0 {
		kids := Children(s.NewMaster)
		gens[s.Generation+1] = kids
		gauge(c.workers, float64(len(kids)), strconv.Itoa(s.Generation+1), "running")
	}
	counts, err := c.conns(gens)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.connDesc, err)
		return
	}
	for g := range gens {
		byState := counts[g]
		for _, st := range TCPStates {
			gauge(c.connDesc, float64(byState[st]), strconv.Itoa(g), st)
		}
	}
}
