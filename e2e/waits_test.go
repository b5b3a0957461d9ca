//go:build linux

package e2e

import (
	"os"
	"strings"
	"testing"
)

// expect runs a control verb and checks its exit status and that its output says want.
func (s *service) expect(code int, want string, args ...string) string {
	s.t.Helper()
	out, got := s.baton(append(args, "-c", "baton.toml")...)
	s.t.Logf("baton %s: exit %d\n%s", strings.Join(args, " "), got, out)
	if got != code || !strings.Contains(out, want) {
		s.t.Fatalf("baton %s = %d %q, want %d and %q", strings.Join(args, " "), got, out, code, want)
	}
	return out
}

// TestControlWaitsTellTheTruth: the exit status of `baton upgrade --wait` and `baton commit
// --wait`, under load, is what happened: 0 committed, 1 rolled back, 4 still in flight when
// the wait ended (the upgrade then goes on, and commits), 4 for a manual commit that waits
// for the operator, 3 with no master. No request fails meanwhile.
func TestControlWaitsTellTheTruth(t *testing.T) {
	s := newService(t)
	gate := s.path("g")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	auto := conf{mode: "gate", gate: "g"}
	s.run(s.render(auto))
	stop := s.load(4)

	// Auto commit: the pending line first (no --timeout: the wait is the master's), then
	// the result.
	out := s.expect(0, "upgrade committed", "upgrade", "--wait")
	if !strings.Contains(out, "upgrade started: new master pid") || !strings.Contains(out, "result due within") {
		t.Errorf("no pending line in %q", out)
	}
	s.waitLog(`msg="upgrade committed;`, 1)

	// Held: the new master's workers wait at the gate. The wait ends, the upgrade does not.
	os.Remove(gate)
	s.expect(4, "upgrade still in flight after", "upgrade", "--wait", "--timeout", "1s")
	if st := s.status(); st.Upgrade == nil {
		t.Fatalf("no upgrade in flight after the wait ended: %+v", st)
	}
	if n := len(lines(s.log(), `msg="upgrade committed;`)); n != 1 {
		t.Fatalf("%d upgrades committed while the new master was held, want 1", n)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitLog(`msg="upgrade committed;`, 2)
	waitFor(t, 20e9, func() bool { st := s.status(); return st.Generation == 3 && st.Upgrade == nil }, "generation 3 in charge")

	// A config the new master rejects: rolled back, 1, with the reason.
	s.writeConfig(s.render(auto) + "\n# broken below\n[worker]\ncount = \"two\"\n")
	s.expect(1, "rolled back", "upgrade", "--wait")
	s.writeConfig(s.render(auto))

	// Manual commit: the wait ends when the new master is ready; `baton commit --wait` ends
	// the upgrade.
	s.writeConfig(s.render(conf{mode: "gate", gate: "g", commit: "manual"}))
	s.expect(0, "reload complete", "reload", "--wait")
	s.expect(4, "it waits for you: `baton commit` commits", "upgrade", "--wait")
	if st := s.status(); st.Upgrade == nil {
		t.Fatalf("no upgrade in flight while the new master waits for the operator: %+v", st)
	}
	s.expect(0, "upgrade committed", "commit", "--wait")
	waitFor(t, 20e9, func() bool { st := s.status(); return st.Generation == 4 && st.Upgrade == nil }, "generation 4 in charge")
	s.expect(1, "commit refused: no upgrade in flight", "commit", "--wait")

	if n, errs := stop(); len(errs) > 0 {
		t.Errorf("%d of %d requests failed during the upgrades: %v", len(errs), n, errs[:min(len(errs), 5)])
	}
	s.onlyGeneration(4, 5)

	s.expect(0, "stopped", "stop", "--wait")
	s.waitExit(20e9)
	s.expect(3, "no master answers", "upgrade", "--wait")
}
