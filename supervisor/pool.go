//go:build linux

package supervisor

import (
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
)

// A pool is one set of workers started from one config: the master's current workers, or
// the candidates of a reload, or old workers retiring. The master loop owns it.
type pool struct {
	id        int // 1 for the master's first pool, +1 for each reload
	cfg       config.Worker
	cred      *syscall.Credential
	listeners []*fdstore.Listener // not owned: the master owns its listeners
	notify    string              // the workers' NOTIFY_SOCKET (notifydir.go); "" in tests
	workers   []*worker           // by slot-1; nil while a slot waits to restart
	lingering []*worker           // exited workers whose process group still has members
	failures  []int               // consecutive failed starts per slot
	restarts  []int               // restarts per slot, for status
	restart   []*timer            // pending restarts per slot
	lastFail  []string            // per slot: why its last worker failed, for status
	ready     bool                // every slot has been ready at least once
	retiring  bool                // asked to stop; no slot restarts
	spread    *spread             // retiring: the stop signals still to send (stop_spread)
}

func newPool(id int, cfg config.Worker, cred *syscall.Credential, ls []*fdstore.Listener) *pool {
	return &pool{
		id: id, cfg: cfg, cred: cred, listeners: ls,
		workers:  make([]*worker, cfg.Count),
		failures: make([]int, cfg.Count),
		restarts: make([]int, cfg.Count),
		restart:  make([]*timer, cfg.Count),
		lastFail: make([]string, cfg.Count),
	}
}

// live returns the workers whose process runs.
func (p *pool) live() []*worker {
	var ws []*worker
	for _, w := range p.workers {
		if w != nil {
			ws = append(ws, w)
		}
	}
	return ws
}

// all returns the live workers and the lingering ones: every process group of the pool.
func (p *pool) all() []*worker {
	return append(p.live(), p.lingering...)
}

// shown returns what status and metrics show of the pool: every process group but those
// whose leader exited and which were not looked at yet (worker.unchecked): nearly always
// empty, they are taken for gone until a look says otherwise.
func (p *pool) shown() []*worker {
	ws := p.live()
	for _, w := range p.lingering {
		if !w.unchecked {
			ws = append(ws, w)
		}
	}
	return ws
}

// readyCount counts the slots whose worker is ready now.
func (p *pool) readyCount() int {
	n := 0
	for _, w := range p.workers {
		if w != nil && w.state == workerReady {
			n++
		}
	}
	return n
}

func (p *pool) allReady() bool { return p.readyCount() == len(p.workers) }

// empty reports whether nothing of the pool runs: no worker, no lingering process group,
// no restart due.
func (p *pool) empty() bool {
	if len(p.lingering) > 0 {
		return false
	}
	for i, w := range p.workers {
		if w != nil || p.restart[i] != nil {
			return false
		}
	}
	return true
}

func (p *pool) cancelRestarts() {
	for i, t := range p.restart {
		disarm(t)
		p.restart[i] = nil
	}
}

// byPID finds a live worker of the pool.
func (p *pool) byPID(pid int) *worker {
	for _, w := range p.workers {
		if w != nil && w.pid == pid {
			return w
		}
	}
	return nil
}

// crashLooping reports whether every slot is down and has failed crashLoop times in a row:
// the pool is not healthy, and the watchdog says so. A slot whose worker is ready again
// does not count, whatever its failure count.
func (p *pool) crashLooping() bool {
	for i, n := range p.failures {
		if n < crashLoop || (p.workers[i] != nil && p.workers[i].state == workerReady) {
			return false
		}
	}
	return len(p.failures) > 0
}

// backoff is the delay before the next restart of a slot that failed n times in a row:
// RestartDelay doubled n-1 times, capped at RestartDelayMax.
func backoff(cfg config.Worker, n int) time.Duration {
	d := cfg.RestartDelay
	for i := 1; i < n && d < cfg.RestartDelayMax; i++ {
		d *= 2
	}
	if d > cfg.RestartDelayMax {
		d = cfg.RestartDelayMax
	}
	return d
}

// healthyAfter is how long a worker must have been ready for its next exit to count as a
// first failure again rather than one more in a crash loop.
func healthyAfter(cfg config.Worker) time.Duration {
	if d := 2 * cfg.RestartDelayMax; d > 10*time.Second {
		return d
	}
	return 10 * time.Second
}

// crashLoop is the number of consecutive failed starts from which a slot is reported as
// crash-looping.
const crashLoop = 5
