//go:build lab && linux

package fleet

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// goodConfig is baton@web's config in every release that works: the socket unit's
// listener (a unix socket, named http) and a TCP listener of baton's own on 127.0.0.1:8080,
// which the load and the playbook's HTTP check use (the labs have loopback only), served
// by two reference workers. Short soak and upgrade timeout: a bad release is found in
// seconds.
func goodConfig() map[string]any {
	return map[string]any{
		"listen": []any{map[string]any{"name": "tcp", "address": "127.0.0.1:8080"}},
		"worker": map[string]any{
			"command": []string{"/usr/lib/baton/hello", "-names", "http,tcp"},
			"count":   2,
		},
		"upgrade": map[string]any{"soak": "2s", "timeout": upgradeTimeout},
	}
}

// upgradeTimeout is upgrade.timeout: how long a new master may take to be ready. Short,
// so that a release whose workers never become ready rolls back quickly; long enough for
// a good one on a busy 2-core machine (a new master is ready in about 100 ms when idle).
const upgradeTimeout = "6s"

// neverReadyConfig is a bad release's config: its workers run but never send READY=1, so
// the new master is not ready within upgrade.timeout and the old master rolls it back.
func neverReadyConfig() map[string]any {
	c := goodConfig()
	c["worker"] = map[string]any{"command": []string{"/bin/sleep", "600"}, "count": 2}
	return c
}

// crashingConfig is host 3's config in the release bad on host 3 only: its workers become
// ready, then exit during the soak (a shell sends hello TERM 1.5 s after it started; hello
// is ready in well under a second, the soak is 2 s), so the new master, on probation until
// its old master commits, gives up and the old master rolls it back. TERM, not a crash:
// hello drains the requests it holds and exits, so the failure itself loses none (a
// SIGSEGV would cut the requests in flight on the worker that dies, which no supervisor can
// save; the e2e matrix counts those).
func crashingConfig() map[string]any {
	c := goodConfig()
	c["worker"] = map[string]any{"command": []string{"/bin/sh", "-c",
		"(sleep 1.5; kill -TERM $$) & exec /usr/lib/baton/hello -names http,tcp"}, "count": 2}
	return c
}

// commonVars are the group variables of every play.
func commonVars() map[string]any {
	return map[string]any{
		"baton_instance":     "web",
		"baton_unit_kind":    "socket",
		"baton_check_url":    "http://127.0.0.1:8080/",
		"baton_check_status": 200,
	}
}

// with sets m's keys to values, given as key, value, key, value…, and returns m.
func with(m map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// playbook is the path of one of the collection's playbooks.
func playbook(name string) string {
	return filepath.Join(fl.Repo, "ansible", "playbooks", name)
}

// outcome is what one host's state must be after a play, against its state before.
type outcome int

const (
	untouched  outcome = iota // same master, generation, version, package on disk
	upgraded                  // a new master, generation + 1, the release's version on disk and running
	rolledBack                // same master and generation, an upgrade rolled back in its history, the old package back on disk
)

func (o outcome) String() string {
	return [...]string{"untouched", "upgraded", "rolled back"}[o]
}

// scenario runs playbook with the group, host and extra variables, under load on every host,
// then checks each host's outcome and that no request failed anywhere. It returns the
// play's output and exit status.
func scenario(t *testing.T, name, book string, groupVars map[string]any, hostVars map[string]map[string]any, extraVars map[string]any, version string, want []outcome) (string, int) {
	t.Helper()
	inv := fl.inventory(t, name, groupVars, hostVars)
	before := fl.settled(t)
	loads := fl.startLoad(t)
	out, rc := fl.play(t, name, inv, book, extraVars)
	after := fl.settled(t)
	results := make([]*load.Result, len(loads))
	for i, l := range loads {
		results[i] = l.stop(t)
	}
	bad := false
	for i, h := range fl.Hosts {
		b, a, r := before[i], after[i], results[i]
		t.Logf("%s %-11s %s -> %s; load %d ok, failed %s", h.Name, want[i], short(b), short(a), r.OK, failures(r))
		errorf := func(format string, args ...any) {
			t.Helper()
			bad = true
			t.Errorf("%s (%s): "+format, append([]any{h.Name, want[i]}, args...)...)
		}
		if r.FailedTotal() != 0 || r.OK == 0 {
			errorf("load: %d ok, %d failed: %s", r.OK, r.FailedTotal(), failures(r))
		}
		switch want[i] {
		case upgraded:
			if a.PID == b.PID || a.Generation != b.Generation+1 || a.Version != version || a.Disk != version {
				errorf("want a new master, generation %d, %s running and on disk; have %s (before: %s)", b.Generation+1, version, a, b)
			}
		case untouched, rolledBack:
			if a.PID != b.PID || a.Generation != b.Generation || a.Version != b.Version || a.Disk != b.Disk || a.Package != b.Package {
				errorf("want the same master, generation, version, package as before (%s); have %s", b, a)
			}
		}
		// baton's own history (it crosses upgrades): one entry more, the upgrade's, or none.
		switch last := a.last(); {
		case want[i] == untouched && len(a.History) != len(b.History):
			errorf("baton's history changed: %+v -> %+v", b.History, a.History)
		case want[i] == untouched:
		case len(a.History) != len(b.History)+1 && len(a.History) < 10: // it keeps the last 10
			errorf("want one entry more in baton's history; have %+v -> %+v", b.History, a.History)
		case want[i] == upgraded && (last.Event != "upgrade" || last.Result != "ok" || last.Generation != a.Generation):
			errorf("want generation %d's upgrade, ok, last in baton's history; have %+v", a.Generation, last)
		case want[i] == rolledBack && (last.Event != "upgrade" || last.Result != "rolled back"):
			errorf("want an upgrade rolled back last in baton's history; have %+v", last)
		}
	}
	if bad {
		t.Logf("%s: the play's output ends:\n%s", name, tail(out, 40))
	}
	return out, rc
}

func short(s state) string {
	return fmt.Sprintf("pid %d gen %d %s", s.PID, s.Generation, s.Version)
}

// TestFleet installs v1 with the role, then runs the four scenarios of the issue in order:
// each starts from the fleet the one before left (a failed one ends the test).
func TestFleet(t *testing.T) {
	v1, v2, v3 := releases[0], releases[1], releases[2]
	deb1, deb2, deb3 := fl.Debs[0], fl.Debs[1], fl.Debs[2]
	t0 := time.Now()
	defer func() { t.Logf("TestFleet: %s", time.Since(t0).Round(100*time.Millisecond)) }()

	// The role, on every host at once: package v1, the config, baton@web.socket and
	// baton@web.service enabled and started.
	if !t.Run("install", func(t *testing.T) {
		inv := fl.inventory(t, "install", with(commonVars(), "baton_package", deb1, "baton_config", goodConfig()), nil)
		out, rc := fl.play(t, "install", inv, filepath.Join(fl.Repo, "labtest/fleet/testdata/install.yml"), nil)
		if rc != 0 {
			t.Fatalf("install.yml: exit %d:\n%s", rc, tail(out, 40))
		}
		for i, s := range fl.settled(t) {
			h := fl.Hosts[i]
			t.Logf("%s: %s", h.Name, s)
			if s.Version != v1 || s.Disk != v1 || s.Generation != 1 {
				t.Errorf("%s: want generation 1 of %s; have %s", h.Name, v1, s)
			}
			for _, unit := range []string{"baton@web.socket", "baton@web.service"} {
				if out, _, err := fl.exec(h, "", "systemctl", "is-enabled", unit); err != nil || strings.TrimSpace(out) != "enabled" {
					t.Errorf("%s: %s is %q, want enabled", h.Name, unit, strings.TrimSpace(out))
				}
			}
		}
	}) {
		return
	}

	// (a) A good release rolls across all 4, serial [1, 25%, 100%] (the playbook's
	// default): host1, then host2, then host3 and host4.
	if !t.Run("good", func(t *testing.T) {
		vars := with(commonVars(), "baton_package", deb2, "baton_config", goodConfig(),
			"baton_expect_version", v2, "baton_previous_package", deb1, "baton_previous_config", goodConfig())
		out, rc := scenario(t, "good", playbook("rolling-upgrade.yml"), vars, nil, nil, v2,
			[]outcome{upgraded, upgraded, upgraded, upgraded})
		if rc != 0 {
			t.Errorf("rolling-upgrade.yml: exit %d, want 0:\n%s", rc, tail(out, 40))
		}
		rec := recap(out)
		for _, h := range fl.Hosts {
			if !strings.Contains(rec[h.Name], "failed=0") {
				t.Errorf("recap of %s: %q, want failed=0", h.Name, rec[h.Name])
			}
		}
	}) {
		return
	}

	// (b) A bad release (its workers never become ready) is stopped at the canary.
	if !t.Run("canary", func(t *testing.T) {
		vars := with(commonVars(), "baton_package", deb3, "baton_config", neverReadyConfig(),
			"baton_expect_version", v3, "baton_previous_package", deb2, "baton_previous_config", goodConfig())
		out, rc := scenario(t, "canary", playbook("rolling-upgrade.yml"), vars, nil, nil, v3,
			[]outcome{rolledBack, untouched, untouched, untouched})
		checkFailedPlay(t, out, rc, "host1", regexp.MustCompile(`upgrade rolled back: new master \d+: not ready within `+upgradeTimeout))
	}) {
		return
	}

	// (c) A release bad on host 3 only (host_vars): its workers exit during the soak. Serial 1: the default [1, 25%, 100%]
	// puts host3 and host4 in one batch (25% of 4 is 1: host2), so host4 would be upgraded
	// beside host3; one host at a time leaves host4 after host3, never touched. serial is
	// templated before any host is chosen, so baton_serial is an extra variable (-e): in
	// group_vars it would be ignored.
	if !t.Run("host3", func(t *testing.T) {
		vars := with(commonVars(), "baton_package", deb3, "baton_config", goodConfig(),
			"baton_expect_version", v3, "baton_previous_package", deb2, "baton_previous_config", goodConfig())
		hostVars := map[string]map[string]any{"host3": {"baton_config": crashingConfig()}}
		out, rc := scenario(t, "host3", playbook("rolling-upgrade.yml"), vars, hostVars, map[string]any{"baton_serial": 1}, v3,
			[]outcome{upgraded, upgraded, rolledBack, untouched})
		checkFailedPlay(t, out, rc, "host3", regexp.MustCompile(`upgrade rolled back: new master \d+: worker \d \(pid \d+\) exit status 0 during probation`))
	}) {
		return
	}

	// (d) rollback.yml puts v2 back on the hosts that run another version (host1, host2)
	// with a hot upgrade; host3 and host4, on v2 already, are not changed.
	t.Run("rollback", func(t *testing.T) {
		vars := with(commonVars(), "baton_previous_package", deb2, "baton_previous_version", v2,
			"baton_previous_config", goodConfig())
		out, rc := scenario(t, "rollback", playbook("rollback.yml"), vars, nil, nil, v2,
			[]outcome{upgraded, upgraded, untouched, untouched})
		if rc != 0 {
			t.Errorf("rollback.yml: exit %d, want 0:\n%s", rc, tail(out, 40))
		}
		rec := recap(out)
		for _, h := range fl.Hosts[2:] {
			if !strings.Contains(rec[h.Name], "changed=0") {
				t.Errorf("recap of %s: %q, want changed=0 (it runs v2 already)", h.Name, rec[h.Name])
			}
		}
	})
}

// checkFailedPlay checks that a play failed, that its only failed host is failed, with
// a line naming it and the master's reason (reason), that the hosts before it passed, and
// that no host after it in the inventory appears in the recap (the play never reached
// them).
func checkFailedPlay(t *testing.T, out string, rc int, failed string, reason *regexp.Regexp) {
	t.Helper()
	if rc == 0 {
		t.Errorf("the play exited 0, want a failure naming %s", failed)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "fatal: ["+failed+"]") || strings.HasPrefix(l, "failed: ["+failed+"]") {
			line = l
		}
		for _, h := range fl.Hosts {
			if h.Name != failed && (strings.HasPrefix(l, "fatal: ["+h.Name+"]") || strings.HasPrefix(l, "failed: ["+h.Name+"]")) {
				t.Errorf("%s failed too: %s", h.Name, l)
			}
		}
	}
	if line == "" || !reason.MatchString(line) {
		t.Errorf("want the play to fail %s with the master's reason (%s); its last failure line: %q\n%s", failed, reason, line, tail(out, 40))
	} else {
		t.Logf("the play failed %s: %s", failed, line)
	}
	rec := recap(out)
	if !strings.Contains(rec[failed], "failed=1") {
		t.Errorf("recap of %s: %q, want failed=1", failed, rec[failed])
	}
	after := false
	for _, h := range fl.Hosts {
		switch r, ok := rec[h.Name]; {
		case h.Name == failed:
			after = true
		case after && ok:
			t.Errorf("%s comes after %s, yet the play reached it: %s", h.Name, failed, r)
		case !after && !strings.Contains(r, "failed=0"):
			t.Errorf("recap of %s, before %s: %q, want failed=0", h.Name, failed, r)
		}
	}
}
