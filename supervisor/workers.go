//go:build linux

package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/fdstore"
)

// The master's side of its workers' lives: start, ready, exit, restart, retire. All of it
// runs on the master loop.

// newPoolFor builds a pool for cfg on the master's listeners ls.
func (m *Master) newPoolFor(cfg *config.Config, ls []*fdstore.Listener) (*pool, error) {
	cred, err := credential(cfg.Worker)
	if err != nil {
		return nil, err
	}
	m.poolSeq++
	return newPool(m.poolSeq, cfg.Worker, cred, ls), nil
}

// startCurrent starts the master's serving pool from cfg.
func (m *Master) startCurrent(cfg *config.Config) error {
	p, err := m.newPoolFor(cfg, m.listeners)
	if err != nil {
		return err
	}
	m.current = p
	m.spawnAll(p)
	return nil
}

// spawnAll starts every worker of a new pool, a few at a time: each start returns once its
// child has exec'd the program, and the next fork need not wait for that. The loop waits
// for all of them; the workers are registered (and failures handled) in slot order, the
// started ones first, since a failure may retire the whole pool.
func (m *Master) spawnAll(p *pool) {
	ws := make([]*worker, len(p.workers))
	errs := make([]error, len(p.workers))
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i := range ws {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws[i], errs[i] = m.startWorker(p, i+1) // reads only what the blocked loop owns
		})
	}
	wg.Wait()
	for i, w := range ws {
		if errs[i] == nil {
			m.started(p, i+1, w)
		}
	}
	for i, err := range errs {
		if err != nil {
			m.failed(p, i+1, err.Error(), time.Time{})
		}
	}
}

// spawn starts the worker of one slot. A failure to start counts as a failed start.
func (m *Master) spawn(p *pool, slot int) {
	w, err := m.startWorker(p, slot)
	if err != nil {
		m.failed(p, slot, err.Error(), time.Time{})
		return
	}
	m.started(p, slot, w)
}

// started registers a worker that runs, and arms its start timeout.
func (m *Master) started(p *pool, slot int, w *worker) {
	p.workers[slot-1] = w
	m.log.Info("worker started", "worker", slot, "worker_pid", w.pid, "pool", p.id)
	if p.cfg.Ready == "started" {
		m.markReady(w)
		return
	}
	w.timer = time.AfterFunc(p.cfg.StartTimeout, func() {
		m.post(func() {
			if w.state == workerStarting {
				m.log.Warn("worker not ready in time; killing it", "worker", slot, "worker_pid", w.pid, "start_timeout", p.cfg.StartTimeout)
				w.killed = true
				w.failReason = fmt.Sprintf("not ready within %s", p.cfg.StartTimeout)
				w.signal(syscall.SIGKILL)
			}
		})
	})
}

func (m *Master) markReady(w *worker) {
	w.stopTimer()
	w.state = workerReady
	w.readyAt = time.Now()
	m.log.Info("worker ready", "worker", w.slot, "worker_pid", w.pid, "pool", w.pool.id)
}

// onWorkerExit runs when a worker process has been reaped.
func (m *Master) onWorkerExit(w *worker) {
	p, was := w.pool, w.state
	w.stopTimer()
	w.state = workerExited
	p.workers[w.slot-1] = nil
	reason := w.exitReason()
	if p.retiring || was == workerStopping {
		m.log.Info("worker exited", "worker", w.slot, "worker_pid", w.pid, "how", reason)
		return
	}
	m.failed(p, w.slot, fmt.Sprintf("(pid %d) %s", w.pid, reason), w.readyAt)
}

// failed decides what a worker that exited on its own, or could not start, means: a failed
// reload, a failed upgrade (a new master whose first workers fail), or a crash to restart.
func (m *Master) failed(p *pool, slot int, reason string, readyAt time.Time) {
	switch {
	case p.retiring:
	case m.reload != nil && p == m.reload.pool:
		m.failReload(fmt.Sprintf("new worker %d %s before every new worker was ready", slot, reason))
	case m.parent != nil && !p.ready && p == m.current:
		m.failStart(fmt.Sprintf("worker %d %s before it was ready", slot, reason))
	default:
		m.slotFailed(p, slot, reason, readyAt)
	}
}

// slotFailed schedules the restart of a slot whose worker crashed or could not start, with
// exponential backoff, and reports a crash loop.
func (m *Master) slotFailed(p *pool, slot int, reason string, readyAt time.Time) {
	i := slot - 1
	if !readyAt.IsZero() && time.Since(readyAt) >= healthyAfter(p.cfg) {
		p.failures[i] = 0
	}
	p.failures[i]++
	n := p.failures[i]
	delay := backoff(p.cfg, n)
	level, msg := slog.LevelWarn, "worker failed; restarting"
	if n >= crashLoop {
		level, msg = slog.LevelError, "worker crash loop; restarting"
		m.lastErr = fmt.Sprintf("worker %d crash loop: %s (%d in a row)", slot, reason, n)
	}
	m.log.Log(nil, level, msg, "worker", slot, "how", reason, "failures", n, "backoff", delay, "event", "worker-crashed")
	p.restart[i] = time.AfterFunc(delay, func() {
		m.post(func() {
			p.restart[i] = nil
			if !p.retiring {
				m.spawn(p, slot)
			}
		})
	})
}

// retire stops every worker of p: the worker's stop signal and its stop timeout, then
// SIGKILL; a fast retire sends SIGTERM with fastStopGrace. p no longer restarts anything.
func (m *Master) retire(p *pool, fastStop bool) {
	if p == m.current {
		m.current = nil
	}
	if !p.retiring {
		p.retiring = true
		m.retiring = append(m.retiring, p)
	}
	p.cancelRestarts()
	sig, grace := p.cfg.StopSignal, p.cfg.StopTimeout
	if fastStop {
		sig, grace = syscall.SIGTERM, fastStopGrace
	}
	for _, w := range p.live() {
		if w.state == workerStopping && !fastStop {
			continue
		}
		w.state = workerStopping
		w.stopTimer()
		w.signal(sig)
		w.timer = time.AfterFunc(grace, func() {
			m.post(func() {
				if w.state != workerExited {
					m.log.Warn("worker did not stop in time; killing it", "worker", w.slot, "worker_pid", w.pid, "timeout", grace)
					w.killed = true
					w.signal(syscall.SIGKILL)
				}
			})
		})
	}
}

// Precheck finds, before any worker starts, what would make every worker fail: a command
// that is not there, a user that does not exist.
func Precheck(cfg *config.Config) error {
	if len(cfg.Worker.Command) == 0 {
		return fmt.Errorf("worker.command: empty")
	}
	if _, err := credential(cfg.Worker); err != nil {
		return err
	}
	name := cfg.Worker.Command[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) && cfg.Worker.Dir != "" {
			name = filepath.Join(cfg.Worker.Dir, name)
		}
		fi, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("worker.command: %w", err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("worker.command: %s is not an executable file", name)
		}
		return nil
	}
	for _, kv := range cfg.Worker.Env {
		if strings.HasPrefix(kv, "PATH=") {
			return nil // the worker looks it up in its own PATH
		}
	}
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("worker.command: %w", err)
	}
	return nil
}
