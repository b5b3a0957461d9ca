//go:build lab && linux

package labtest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitStore waits until systemd holds n fds in the service's FD store.
func (in *instance) waitStore(n int) {
	in.t.Helper()
	waitState(in.t, 10*time.Second, in.Name, map[string]string{"NFileDescriptorStore": strconv.Itoa(n)})
}

// servedByBodyOf returns a probe-line test: a body line from one of pids.
func servedByBodyOf(pids []int) func(string) bool {
	return func(line string) bool {
		s, ok := strings.CutPrefix(line, "body ")
		if !ok {
			return false
		}
		b, ok := parseBody(s)
		return ok && slices.Contains(pids, b.PID)
	}
}

// (g) The FD store keeps the sockets baton opened itself: they survive kill -9 of the
// master under Restart=on-failure, and a connection made while no master runs is
// answered by the next one; systemctl restart refuses no connection; a HUP that drops a
// listener drops it from the store.
func TestFDStore(t *testing.T) {
	in := newInstance(t, roleFDStore, "g", 18110)
	extra := "127.0.0.1:18111"
	in.conf.Listen = []listen{{"extra", extra}}
	in.conf.Command = []string{filepath.Join(lab.Bin, "hello"), "-names", in.FDName + ",extra", "-drain", "300ms"}
	in.serviceDropIn("Restart=on-failure", "RestartSec=3")
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	in.waitWorkers(c0, master, 2)
	in.waitStore(2)
	mustServe(t, in.HTTP, 2)
	mustServe(t, extra, 2)

	// kill -9 of the master: the sockets stay in the store; a client that connects
	// while no master runs is answered by the next master's workers.
	c1 := cursor(t)
	signal(t, "KILL", master)
	waitState(t, 15*time.Second, in.Name, map[string]string{"SubState": "auto-restart", "NFileDescriptorStore": "2"})
	p := startProbe(t, "-n", "1", "-timeout", "30s", "-announce", "http://"+in.HTTP+"/")
	p.waitLine(t, 10*time.Second, "the probe connects", func(l string) bool { return strings.HasPrefix(l, "connected ") })
	if st := show(t, in.Name, "MainPID", "SubState"); st["MainPID"] != "0" || st["SubState"] != "auto-restart" {
		t.Fatalf("the probe connected, but the service is %v: the connection was not made while no master ran (RestartSec too short?)", st)
	}
	r := p.wait(t, 40*time.Second)
	if r.OK != 1 {
		t.Fatalf("the connection made while no master ran: %d answered, errors %v", r.OK, r.Errors)
	}
	waitState(t, 15*time.Second, in.Name, map[string]string{"ActiveState": "active"})
	master2 := in.mainPID()
	workers2 := in.waitWorkers(c1, master2, 2)
	for pid := range r.servedBy() {
		if !slices.Contains(workers2, pid) {
			t.Errorf("the queued connection was answered by %d, want a worker of the restarted master %v", pid, workers2)
		}
	}
	if n := showInt(t, in.Name, "NRestarts"); n != 1 {
		t.Errorf("NRestarts = %d, want 1", n)
	}
	in.waitStore(2)

	// systemctl restart under load: no request fails.
	load := startLoad(t, in.HTTP, 4)
	load.waitLine(t, 10*time.Second, "answers before the restart", servedByBodyOf(workers2))
	c2 := cursor(t)
	t0 := time.Now()
	if _, errOut, rc := runRC(t, "systemctl", "restart", in.Name); rc != 0 {
		t.Fatalf("systemctl restart: exit %d: %s", rc, errOut)
	}
	t.Logf("systemctl restart took %s", time.Since(t0).Round(time.Millisecond))
	master3 := in.mainPID()
	workers3 := in.waitWorkers(c2, master3, 2)
	load.waitLine(t, 20*time.Second, "answers after the restart", servedByBodyOf(workers3))
	lr := load.stop(t)
	if lr.Failed != 0 || lr.OK == 0 {
		t.Errorf("requests across systemctl restart: %d ok, %d failed: %v", lr.OK, lr.Failed, lr.Errors)
	}
	t.Logf("requests across systemctl restart: %d ok, %d failed", lr.OK, lr.Failed)
	in.waitStore(2)

	// HUP without the extra listener: it leaves the store, and closes.
	c := in.conf
	c.Listen = nil
	c.Command = nil
	in.writeConfig(c)
	if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
		t.Fatalf("systemctl reload: exit %d: %s", rc, errOut)
	}
	in.waitStore(1)
	waitFor(t, 10*time.Second, "the dropped listener refuses connections", func() (bool, string) {
		r := probe(t, extra, 1)
		return r.Failed == 1 && hasError(r, "connection refused"), fmt.Sprint(r)
	})
	mustServe(t, in.HTTP, 2)
}

// hasError reports whether one of the probe's errors contains s.
func hasError(r probeResult, s string) bool {
	for e := range r.Errors {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}
