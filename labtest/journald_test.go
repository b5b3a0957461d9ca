//go:build lab && linux

package labtest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/logging"
)

// (i) journalctl -o json shows baton's lifecycle events with their BATON_* fields and
// MESSAGE_IDs, and the workers' own lines under the workers' own _PID.
func TestJournalFields(t *testing.T) {
	in := newInstance(t, roleSocket, "i", 18113)
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	workers := in.waitWorkers(c0, master, 2)
	event := func(ev string) func([]entry) bool {
		return func(es []entry) bool {
			return slices.ContainsFunc(es, func(e entry) bool { return e.F["BATON_EVENT"] == ev })
		}
	}

	signal(t, "KILL", workers[0])
	waitJournal(t, 10*time.Second, in.Name, c0, "worker-crashed", event("worker-crashed"))
	if _, errOut, rc := runRC(t, "systemctl", "reload", in.Name); rc != 0 {
		t.Fatalf("systemctl reload: exit %d: %s", rc, errOut)
	}
	writeFile(t, in.Config, "not toml\n")
	runRC(t, "systemctl", "reload", in.Name) // fails: that is the point
	waitJournal(t, 10*time.Second, in.Name, c0, "reload-failed", event("reload-failed"))
	in.writeConfig(in.conf)
	run(t, "systemctl", "kill", "--kill-whom=main", "-s", "USR2", in.Name)
	in.waitMainPID(in.newMaster(c0, master))
	run(t, "systemctl", "stop", in.Name)

	want := []struct {
		event    string
		priority string
	}{
		{"ready", "6"}, {"worker-crashed", "4"}, {"reload-started", "6"}, {"reload-ok", "6"},
		{"reload-failed", "3"}, {"upgrade-started", "6"}, {"upgrade-committed", "6"}, {"stopping", "6"},
	}
	// Wait for every line the checks below need (they travel by two transports).
	checks := map[string]func(entry) bool{}
	for _, w := range want {
		checks["BATON_EVENT="+w.event] = func(e entry) bool { return e.F["BATON_EVENT"] == w.event }
	}
	for _, w := range workers {
		checks["serving from _PID="+strconv.Itoa(w)] = func(e entry) bool { return e.Msg() == "serving" && e.F["_PID"] == strconv.Itoa(w) }
	}
	es := waitLines(t, 10*time.Second, in.Name, c0, checks)
	for _, w := range want {
		for _, e := range filter(es, func(e entry) bool { return e.F["BATON_EVENT"] == w.event }) {
			if id := logging.MessageID(w.event); e.F["MESSAGE_ID"] != id {
				t.Errorf("%s: MESSAGE_ID=%q, want %q", w.event, e.F["MESSAGE_ID"], id)
			}
			if e.F["_TRANSPORT"] != "journal" || e.F["SYSLOG_IDENTIFIER"] != "baton" || e.F["BATON_GENERATION"] == "" || e.F["BATON_PID"] == "" {
				t.Errorf("%s: _TRANSPORT=%q SYSLOG_IDENTIFIER=%q BATON_GENERATION=%q BATON_PID=%q; want journal, baton, and both set",
					w.event, e.F["_TRANSPORT"], e.F["SYSLOG_IDENTIFIER"], e.F["BATON_GENERATION"], e.F["BATON_PID"])
			}
			if e.F["PRIORITY"] != w.priority {
				t.Errorf("%s: PRIORITY=%q, want %s", w.event, e.F["PRIORITY"], w.priority)
			}
			if e.F["_SYSTEMD_UNIT"] != in.Name {
				t.Errorf("%s: _SYSTEMD_UNIT=%q, want %s", w.event, e.F["_SYSTEMD_UNIT"], in.Name)
			}
		}
	}
	if got := filter(es, func(e entry) bool { return e.F["BATON_EVENT"] == "worker-crashed" }); len(got) > 0 && got[0].F["BATON_WORKER"] == "" {
		t.Errorf("worker-crashed without BATON_WORKER: %v", got[0].F)
	}
	var gens []string
	for _, e := range filter(es, func(e entry) bool { return e.F["BATON_EVENT"] == "ready" }) {
		gens = append(gens, e.F["BATON_GENERATION"])
	}
	if !slices.Contains(gens, "1") || !slices.Contains(gens, "2") {
		t.Errorf("ready events of generations %v, want 1 and 2", gens)
	}

	// The workers' own lines (hello logs "serving" to stderr) carry the worker's _PID.
	for _, w := range workers {
		if !slices.ContainsFunc(withMsg(es, "serving"), func(e entry) bool {
			return e.F["_PID"] == strconv.Itoa(w) && e.F["_SYSTEMD_UNIT"] == in.Name
		}) {
			t.Errorf("no \"serving\" line of worker %d under _PID=%d", w, w)
		}
	}
}
