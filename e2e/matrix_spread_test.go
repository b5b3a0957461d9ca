//go:build linux

package e2e

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// spreadCases: [worker] stop_spread under load. The old workers' stop signals go out one
// at a time; the ones not signalled yet serve on, and a rollback keeps them serving.
// What a test sees of a worker's signal is the reference worker's own "draining" line.
func spreadCases() []faultCase {
	upgrade := func(f *fault) {
		o := f.first
		w := f.slots(o)
		n := f.usr2(o)
		f.ready(o, n)
		f.gone(w[1])
		// Worker 1 has drained and exited; worker 2's signal is due 8s after the commit
		// began: it has not had it, and serves.
		if ls := f.workerLines(w[2], "msg=draining"); len(ls) != 0 || !alive(w[2]) {
			f.t.Errorf("worker 2 (pid %d) signalled before its turn: alive %v, %q", w[2], alive(w[2]), ls)
		}
		if st, err := f.statusOf(); err != nil {
			f.t.Errorf("status: %v", err)
		} else if st.Step == nil || !strings.Contains(st.Step.Text, "serving until their stop signal") {
			f.t.Errorf("status step %+v: want the held worker counted", st.Step)
		} else if i := slices.IndexFunc(st.Workers, func(x supervisor.WorkerStatus) bool { return x.PID == w[2] }); i < 0 || st.Workers[i].StopAt == nil || st.Workers[i].State != "ready" {
			f.t.Errorf("status workers %+v: want worker 2 ready, with its stop_at", st.Workers)
		}
		f.gone(o)
		// The order of the signals, as the workers saw them (the log's line order).
		log := strings.Split(f.log(), "\n")
		stopped1 := slices.IndexFunc(log, isLine("msg=stopped", w[1]))
		draining2 := slices.IndexFunc(log, isLine("msg=draining", w[2]))
		if stopped1 < 0 || draining2 < 0 || draining2 < stopped1 {
			f.t.Errorf("worker 2 drained (line %d) before worker 1 had stopped (line %d)", draining2, stopped1)
		}
	}
	spread := conf{worker: `stop_spread = "16s"`}
	return []faultCase{
		{name: "stop-spread-upgrade", kind: "spread", conf: spread, end: end{gen: 2}, steps: upgrade},
		{name: "stop-spread-upgrade-keep-alive", kind: "spread", conf: spread, load: keepAlive, end: end{gen: 2}, steps: upgrade},
		// A rollback during the spread: worker 2, never signalled, serves on as one of the
		// old master's workers; slot 1 gets a new one. An hour's spread: its signal would be
		// due in 30 minutes, so the rollback surely comes first.
		{name: "stop-spread-rollback-during-commit", kind: "spread", fast: true, conf: conf{worker: `stop_spread = "1h"`},
			end: end{gen: 1}, steps: func(f *fault) {
				o := f.first
				w := f.slots(o)
				n := f.usr2(o)
				f.ready(o, n)
				f.wait(`msg="workers stop one at a time"`, o)
				f.gone(w[1])
				out, code := f.baton("rollback", "--socket", f.path("baton.sock"), "--wait")
				if code != 0 || !strings.Contains(out, "rolled back") {
					f.t.Errorf("rollback --wait = %d %q", code, out)
				}
				f.gone(n)
				f.wait(`msg="workers not stopped yet serve on; the stopped ones are replaced"`, o, `\bserving=1\b`, `\breplaced=1\b`)
				if !alive(w[2]) || len(f.workerLines(w[2], "msg=draining")) != 0 {
					f.t.Errorf("worker 2 (pid %d) was stopped: alive %v", w[2], alive(w[2]))
				}
				waitFor(f.t, 20*time.Second, func() bool { return slices.Contains(workersOf(o), w[2]) && len(workersOf(o)) == 2 }, "worker 2 and a new worker 1 under %d", o)
			}},
	}
}

var workerStartedRE = regexp.MustCompile(`\bworker=(\d+) worker_pid=(\d+)`)

// slots maps the slots of master's workers (1-based) to their pids, from its "worker
// started" lines: the last start of each slot.
func (f *fault) slots(master int) map[int]int {
	m := map[int]int{}
	for _, l := range f.linesOf(master, `msg="worker started"`) {
		if s := workerStartedRE.FindStringSubmatch(l); s != nil {
			slot, _ := strconv.Atoi(s[1])
			pid, _ := strconv.Atoi(s[2])
			m[slot] = pid
		}
	}
	return m
}

// workerLines returns the reference worker pid's own log lines that contain sub.
func (f *fault) workerLines(pid int, sub string) []string {
	var out []string
	for _, l := range strings.Split(f.log(), "\n") {
		if isLine(sub, pid)(l) {
			out = append(out, l)
		}
	}
	return out
}

// isLine matches the reference worker pid's own log lines that contain sub.
func isLine(sub string, pid int) func(string) bool {
	re := regexp.MustCompile(`\bpid=` + strconv.Itoa(pid) + `\b`)
	return func(l string) bool { return strings.Contains(l, sub) && re.MatchString(l) }
}
