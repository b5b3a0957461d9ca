package metrics

import (
	"maps"
	"slices"
	"time"
)

// Label values of the counters, as exported.
const (
	ResultOK         = "ok"          // a reload whose new workers are all ready
	ResultFailed     = "failed"      // a reload that failed (bad config, new workers failed); an upgrade that did not start
	ResultRefused    = "refused"     // a reload asked for while it could not run (an upgrade in flight)
	ResultCommitted  = "committed"   // an upgrade committed: the new master is in charge
	ResultRolledBack = "rolled_back" // an upgrade that ended with the old master in charge

	ActionReload  = "reload"
	ActionUpgrade = "upgrade"

	PhaseUpgradeReady  = "upgrade_ready"  // upgrade started → the new master's workers ready
	PhaseUpgradeCommit = "upgrade_commit" // the new master ready → committed
	PhaseReload        = "reload"         // reload started → every new worker ready
)

// Counts are the totals a master keeps, since the first master of the service started
// (carried over at each commit). The master loop owns them; they are plain data, sent to
// the new master as JSON.
type Counts struct {
	WorkerStarts   uint64 `json:"worker_starts,omitempty"`
	WorkerExits    uint64 `json:"worker_exits,omitempty"`
	WorkerRestarts uint64 `json:"worker_restarts,omitempty"` // restarts scheduled after a crash or a failed start
	// WorkerWatchdogs counts workers stopped by their watchdog: no WATCHDOG=1 in time, or
	// WATCHDOG=trigger. Each is also counted in WorkerRestarts when its slot restarts.
	WorkerWatchdogs uint64 `json:"worker_watchdogs,omitempty"`

	Reloads   map[string]uint64 `json:"reloads,omitempty"`   // by result
	Upgrades  map[string]uint64 `json:"upgrades,omitempty"`  // by result
	Rollbacks map[string]uint64 `json:"rollbacks,omitempty"` // by why

	// LastSuccess is, per action, when it last succeeded (seconds since the epoch).
	LastSuccess map[string]float64 `json:"last_success,omitempty"`
	// Phases are the durations of the phases of upgrades and reloads.
	Phases map[string]*Histogram `json:"phases,omitempty"`
}

// Count adds one to m[key], making m if need be.
func Count(m *map[string]uint64, key string) {
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[key]++
}

// Succeeded records that action succeeded at t.
func (c *Counts) Succeeded(action string, t time.Time) {
	if c.LastSuccess == nil {
		c.LastSuccess = map[string]float64{}
	}
	c.LastSuccess[action] = float64(t.UnixNano()) / 1e9
}

// Observe records that phase took d.
func (c *Counts) Observe(phase string, d time.Duration) {
	if c.Phases == nil {
		c.Phases = map[string]*Histogram{}
	}
	h := c.Phases[phase]
	if h == nil {
		h = NewHistogram()
		c.Phases[phase] = h
	}
	h.Observe(d.Seconds())
}

// Add adds o's totals to c: the old master's, at the commit of an upgrade. A last success
// is the later of both; a histogram whose buckets differ from this binary's (o came from
// another version) is left out rather than merged wrong.
func (c *Counts) Add(o *Counts) {
	if o == nil {
		return
	}
	c.WorkerStarts += o.WorkerStarts
	c.WorkerExits += o.WorkerExits
	c.WorkerRestarts += o.WorkerRestarts
	c.WorkerWatchdogs += o.WorkerWatchdogs
	for _, m := range []struct {
		dst *map[string]uint64
		src map[string]uint64
	}{
		{&c.Reloads, o.Reloads}, {&c.Upgrades, o.Upgrades}, {&c.Rollbacks, o.Rollbacks},
	} {
		for k, v := range m.src {
			if *m.dst == nil {
				*m.dst = map[string]uint64{}
			}
			(*m.dst)[k] += v
		}
	}
	for k, v := range o.LastSuccess {
		if c.LastSuccess == nil {
			c.LastSuccess = map[string]float64{}
		}
		c.LastSuccess[k] = max(c.LastSuccess[k], v)
	}
	for k, h := range o.Phases {
		if h == nil || !h.valid() {
			continue
		}
		if c.Phases == nil {
			c.Phases = map[string]*Histogram{}
		}
		if c.Phases[k] == nil {
			c.Phases[k] = NewHistogram()
		}
		c.Phases[k].add(h)
	}
}

// Clone returns a deep copy of c, for a snapshot.
func (c *Counts) Clone() Counts {
	d := *c
	d.Reloads = maps.Clone(c.Reloads)
	d.Upgrades = maps.Clone(c.Upgrades)
	d.Rollbacks = maps.Clone(c.Rollbacks)
	d.LastSuccess = maps.Clone(c.LastSuccess)
	if c.Phases != nil {
		d.Phases = make(map[string]*Histogram, len(c.Phases))
		for k, h := range c.Phases {
			hc := *h
			hc.Bounds = slices.Clone(h.Bounds)
			hc.Counts = slices.Clone(h.Counts)
			d.Phases[k] = &hc
		}
	}
	return d
}

// Bounds are the upper bounds of the phase histograms' buckets, in seconds: a reload or a
// new master's start takes from milliseconds to minutes (upgrade.timeout, the drain).
var Bounds = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Histogram is a Prometheus histogram as plain data: Counts[i] observations fell at or
// below Bounds[i] and above the bound before; the last element counts those above every
// bound.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
}

// NewHistogram returns an empty histogram with Bounds.
func NewHistogram() *Histogram {
	return &Histogram{Bounds: slices.Clone(Bounds), Counts: make([]uint64, len(Bounds)+1)}
}

// Observe adds one observation of v seconds.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.Bounds, v)
	h.Counts[i]++
	h.Sum += v
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// valid reports whether h has this binary's buckets and is well formed (it came over the
// hand-over socket from another binary).
func (h *Histogram) valid() bool {
	return slices.Equal(h.Bounds, Bounds) && len(h.Counts) == len(Bounds)+1 && h.Sum >= 0
}

func (h *Histogram) add(o *Histogram) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.Sum += o.Sum
}
