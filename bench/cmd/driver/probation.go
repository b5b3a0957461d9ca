//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
	"github.com/baton-supervisor/baton/bench/load"
)

// The health gate (issue 12): an upgrade to a generation that passes readiness and then
// fails, under keep-alive load, with the old master soaking for an hour so that only the
// failure can end the upgrade. What is measured, from the log lines as the driver reads
// them: how long after the fault the new master saw it ("probation failed"), and how long
// after the fault the old master had rolled back (the new master gone, "upgrade rolled
// back" logged), and the requests that failed meanwhile.

// gateCase is one way a new generation fails its probation.
type gateCase struct {
	name  string
	fault string // the log line (msg) that marks the fault: its time is the start
	// worker is the new generation's [worker] command; health its [health] table.
	worker func(d *driver) string
	health string
}

// gateResult is one case's outcome.
type gateResult struct {
	name            string
	detect, rolled  time.Duration // fault → new master's "probation failed"; fault → rolled back
	reason          string
	requests, fails int64
	err             error
}

var gateCases = []gateCase{
	{
		// hello, with a shell that kills it 10 s after it started (it is ready in a few ms):
		// the shell prints a line first, whose time marks the fault.
		name: "worker crashes 10 s after ready", fault: "gate: crash now",
		worker: func(d *driver) string {
			return fmt.Sprintf(`command = ["/bin/sh", "-c", "(sleep 10; echo 'msg=\"gate: crash now\"'; kill -SEGV $$) & exec %s -drain %s"]`, d.hello, d.drain)
		},
	},
	{
		// A check that always fails, with the defaults (every 1 s, 3 failures in a row): the
		// fault is there from the moment the workers are ready.
		name: "check fails (defaults: 1 s, 3 in a row)", fault: "workers ready",
		worker: func(d *driver) string {
			return fmt.Sprintf("command = [%q, \"-drain\", %q]", d.hello, d.drain.String())
		},
		health: "check = [\"/bin/sh\", \"-c\", \"echo backend down; exit 1\"]\n",
	},
}

func (d *driver) healthGate() []gateResult {
	var out []gateResult
	for _, c := range gateCases {
		r := d.gateCase(c)
		d.progress("health gate, %s: detected in %v, rolled back %v after the fault, %d/%d requests failed %v",
			c.name, r.detect, r.rolled, r.fails, r.requests, errText(r.err))
		out = append(out, r)
	}
	return out
}

func (d *driver) gateCase(c gateCase) (r gateResult) {
	r.name = c.name
	b, err := d.startBaton(batonOpts{workers: d.workers, listeners: 1, commit: "auto", soak: "1h"})
	if err != nil {
		r.err = err
		return r
	}
	defer b.stop()
	ld, err := load.Start(load.Options{Addr: b.addr(), Clients: d.clients, Mode: load.KeepAlive, Duration: 5 * time.Minute, Timeout: d.timeout})
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		res := ld.Stop()
		r.requests, r.fails = res.Requests, res.FailedTotal()
	}()
	// The new generation's config: the same but for the worker and the check.
	conf := filepath.Join(b.dir, "baton.toml")
	old, err := os.ReadFile(conf)
	if err != nil {
		r.err = err
		return r
	}
	text := string(old)
	i := strings.Index(text, "command = ")
	j := i + strings.IndexByte(text[i:], '\n')
	text = text[:i] + c.worker(d) + text[j:]
	if c.health != "" {
		text += "\n[health]\n" + c.health
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		r.err = err
		return r
	}
	deadline := time.Now().Add(60 * time.Second)
	o, err := procs.Open(b.pid)
	if err != nil {
		r.err = err
		return r
	}
	defer o.Close()
	from := b.log.mark()
	if err := o.Signal(syscall.SIGUSR2); err != nil {
		r.err = err
		return r
	}
	_, started, err := b.log.wait(from, deadline, "upgrade started", msgFrom("upgrade started", b.pid))
	if err != nil {
		r.err = err
		return r
	}
	nw := started.fields["new_pid"]
	_, fault, err := b.log.wait(from, deadline, c.fault, func(f map[string]string) bool {
		return f["msg"] == c.fault && (c.fault != "workers ready" || f["pid"] == nw)
	})
	if err != nil {
		r.err = err
		return r
	}
	_, seen, err := b.log.wait(from, deadline, "probation failed", func(f map[string]string) bool {
		return f["event"] == "probation-failed" && f["pid"] == nw
	})
	if err != nil {
		r.err = err
		return r
	}
	_, rolled, err := b.log.wait(from, deadline, "upgrade rolled back", msgPrefixFrom("upgrade rolled back", b.pid))
	if err != nil {
		r.err = err
		return r
	}
	r.detect, r.rolled, r.reason = seen.at.Sub(fault.at), rolled.at.Sub(fault.at), rolled.fields["reason"]
	return r
}
