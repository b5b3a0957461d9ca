//go:build lab && linux

package labtest

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// (h) The watchdog: a master whose loop is wedged (test switch BATON_TEST_WEDGE=1 makes
// USR1 block it) stops pinging, and systemd kills and restarts it.
func TestWatchdogRestartsWedgedMaster(t *testing.T) {
	in := newInstance(t, roleSocket, "h", 18112)
	in.serviceDropIn("WatchdogSec=2", "Restart=on-failure", "RestartSec=1", "Environment=BATON_TEST_WEDGE=1")
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	in.waitWorkers(c0, master, 2)

	// A healthy master pings: the last ping's time moves.
	first := show(t, in.Name, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
	waitFor(t, 10*time.Second, "a watchdog ping", func() (bool, string) {
		now := show(t, in.Name, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
		return now != first && now != "0", now
	})
	if n := showInt(t, in.Name, "NRestarts"); n != 0 {
		t.Fatalf("NRestarts = %d before the wedge", n)
	}

	c1 := cursor(t)
	run(t, "systemctl", "kill", "--kill-whom=main", "-s", "USR1", in.Name)
	waitFor(t, 30*time.Second, "a restart after the watchdog fired", func() (bool, string) {
		st := show(t, in.Name, "NRestarts", "ActiveState", "MainPID")
		return st["NRestarts"] == "1" && st["ActiveState"] == "active" && st["MainPID"] != fmt.Sprint(master), fmt.Sprint(st)
	})
	es := journal(t, in.Name, c1)
	if len(containing(es, "BATON_TEST_WEDGE")) == 0 {
		t.Errorf("the master did not log that it wedged itself")
	}
	if len(containing(es, "Watchdog timeout")) == 0 {
		t.Errorf("no \"Watchdog timeout\" in the journal")
	}
	if alive(t, master) {
		t.Errorf("the wedged master %d still runs", master)
	}
	master2 := in.mainPID()
	workers2 := in.waitWorkers(c1, master2, 2)
	r := mustServe(t, in.HTTP, 4)
	for pid := range r.servedBy() {
		if !slices.Contains(workers2, pid) {
			t.Errorf("answered by %d, want a worker of the restarted master %v", pid, workers2)
		}
	}
}
