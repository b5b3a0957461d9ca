//go:build linux

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// An old master mid-upgrade, as `baton status` prints it: what it waits for, and until
// when, first; both generations' workers; the history; nothing wider than 80 columns.
func TestPrintStatusDuringUpgrade(t *testing.T) {
	at := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	deadline := at.Add(23 * time.Second)
	st := &supervisor.Status{
		PID: 1200, Generation: 1, Main: true, State: "upgrading", Role: "in charge", Config: "/etc/baton/web.toml",
		Version: "v1.4.0", Exe: "/usr/bin/baton", StartedAt: at, Uptime: "3h0m0s",
		Line:      "generation 1: 2/2 workers ready; upgrade to pid 1300 upgrading",
		Step:      &supervisor.Step{Name: "new-master-starting", Text: "waiting for the new master to be ready (1 of 2 workers ready), times out in 23s", Deadline: &deadline, Remaining: "23s"},
		Listeners: []supervisor.ListenerStatus{{Name: "web", Network: "tcp", Address: "127.0.0.1:8080", Source: "fdstore"}},
		Workers: []supervisor.WorkerStatus{
			{Slot: 1, PID: 1201, Pool: 1, State: "ready", Role: "current", Uptime: "3h0m0s", Restarts: 2},
			{Slot: 2, PID: 1202, Pool: 1, State: "ready", Role: "current", Uptime: "3h0m0s"},
		},
		Upgrade: &supervisor.UpgradeStatus{NewPID: 1300, State: "upgrading", Since: "37s", NewMaster: &supervisor.MasterSnapshot{
			PID: 1300, Generation: 2, State: "joining", Version: "v1.5.0", Exe: "/usr/bin/baton", Ready: 1, Wanted: 2,
			Workers: []supervisor.WorkerStatus{{Slot: 1, PID: 1301, Pool: 1, State: "ready", Role: "current", Uptime: "36s"}, {Slot: 2, PID: 1302, Pool: 1, State: "starting", Role: "current", Uptime: "36s"}},
		}},
		History: []supervisor.HistoryEntry{
			{Time: at, Generation: 1, Event: "start", Result: "ok", Took: "120ms"},
			{Time: at.Add(time.Hour), Generation: 1, Event: "reload", Result: "failed", Reason: "bad config: web.toml:8: worker.count: must be 1..1024", Took: "3ms"},
		},
	}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	t.Log("\n" + out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if want := "generation 1 upgrading, in charge, pid 1200"; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	if want := "  now         waiting for the new master to be ready (1 of 2 workers ready),"; lines[1] != want {
		t.Errorf("second line %q, want %q", lines[1], want)
	}
	for _, sub := range []string{"v1.4.0 /usr/bin/baton", "(fdstore)", "new master  pid 1300, generation 2, joining, 1 of 2 workers ready", "v1.5.0", "1302     starting", "reload            failed", "web.toml:8", "times out in 23s"} {
		if !strings.Contains(out, sub) {
			t.Errorf("no %q in\n%s", sub, out)
		}
	}
	for _, l := range lines[1:] {
		if len(l) > 80 || strings.HasSuffix(l, " ") {
			t.Errorf("line wider than 80 columns: %q", l)
		}
	}
}
