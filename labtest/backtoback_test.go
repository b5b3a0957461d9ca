//go:build lab && linux

package labtest

import (
	"path/filepath"
	"testing"
	"time"
)

// (issue 8) Upgrades back to back under systemd's watchdog. The watchdog runs on across a
// change of main process; a master used to ping only on its own timer, WatchdogSec/2
// after it started, so masters that each lived less than that never pinged and systemd
// aborted the service (`make bench`: SIGABRT at the 80th upgrade in a row). WatchdogSec=2,
// 4 clients, `baton upgrade --wait` again and again for three watchdog periods: no
// watchdog timeout, NRestarts=0, active, no failed request.
func TestUpgradesBackToBackUnderWatchdog(t *testing.T) {
	in := newInstance(t, roleSocket, "bb", 18150)
	in.conf.Soak = "0s"
	in.serviceDropIn("WatchdogSec=2")
	in.start()
	first := in.mainPID()
	load := startLoad(t, in.HTTP, 4)
	c0 := cursor(t)
	baton := filepath.Join(lab.Bin, "baton")
	n := 0
	for t0 := time.Now(); time.Since(t0) < 6*time.Second; n++ {
		if out, errOut, rc := runRC(t, baton, "upgrade", "--wait", "--socket", in.Control); rc != 0 {
			t.Fatalf("upgrade %d: exit %d: %s %s", n+1, rc, out, errOut)
		}
	}
	lr := load.stop(t)
	t.Logf("%d upgrades in 6 s; requests: %d ok, %d failed %v", n, lr.OK, lr.Failed, lr.Errors)
	if lr.Failed != 0 || lr.OK == 0 {
		t.Errorf("requests across %d upgrades: %d ok, %d failed: %v", n, lr.OK, lr.Failed, lr.Errors)
	}
	for _, e := range containing(journal(t, in.Name, c0), "Watchdog timeout") {
		t.Errorf("%s", e)
	}
	if st := show(t, in.Name, "ActiveState", "NRestarts", "MainPID"); st["ActiveState"] != "active" || st["NRestarts"] != "0" || st["MainPID"] == "0" {
		t.Errorf("after %d upgrades: %v; want active, NRestarts=0", n, st)
	}
	if m := in.mainPID(); m == first {
		t.Errorf("MainPID is still the first master %d after %d upgrades", first, n)
	}
}
