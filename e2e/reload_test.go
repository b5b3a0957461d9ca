//go:build linux

package e2e

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestReloadChangedConfig: HUP with another worker count and env starts the new workers,
// and retires the old ones only once every new one is ready; no request fails meanwhile.
func TestReloadChangedConfig(t *testing.T) {
	s := newService(t)
	master := s.run(s.helloConfig(2, ""))
	old := s.waitWorkers(master, 2)

	stop := s.load(4)
	s.writeConfig(s.helloConfig(3, `env = { RELOADED = "yes" }`))
	s.signal(master, syscall.SIGHUP)
	s.waitLog(`msg="reload complete"`, 1)
	nw := s.waitWorkers(master, 3)
	n, errs := stop()
	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed during the reload: %v", len(errs), n, errs[:min(len(errs), 5)])
	}
	for _, pid := range old {
		for _, p := range nw {
			if p == pid {
				t.Errorf("old worker %d still serving after the reload", pid)
			}
		}
	}
	for _, pid := range nw {
		env, _ := readFile("/proc/" + itoa(pid) + "/environ")
		if !strings.Contains(env, "RELOADED=yes") {
			t.Errorf("new worker %d lacks the new env", pid)
		}
	}
	// Order in the log: every new worker ready, then "reload complete", then old workers exit.
	log := s.log()
	complete := strings.Index(log, `msg="reload complete"`)
	readyRE := regexp.MustCompile(`msg="worker ready".* pool=2`)
	if got := len(readyRE.FindAllString(log[:complete], -1)); got != 3 {
		t.Errorf("%d new workers ready before the reload completed, want 3", got)
	}
	for _, pid := range old {
		i := strings.Index(log, "worker_pid="+itoa(pid)+" how=")
		if i >= 0 && i < complete {
			t.Errorf("old worker %d exited before the new workers were ready", pid)
		}
	}
}

// TestReloadBadConfig: HUP with an invalid config logs a clear error and changes nothing.
func TestReloadBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, config, why string }{
		{"syntax", "this is not toml", "baton.toml:1"},
		{"bad value", "[worker]\ncommand = [\"x\"]\ncount = -1\n", "worker.count"},
		{"missing command", "", "worker.command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t)
			master := s.run(s.helloConfig(2, ""))
			old := s.waitWorkers(master, 2)
			if tc.name == "missing command" {
				s.writeConfig(strings.Replace(s.helloConfig(2, ""), bin.hello, "/nonexistent/worker", 1))
			} else {
				s.writeConfig(tc.config)
			}
			s.signal(master, syscall.SIGHUP)
			got := s.waitLog(`msg="reload failed.*`, 1)
			if !strings.Contains(got[0], tc.why) {
				t.Errorf("reload error %q does not name %q", got[0], tc.why)
			}
			if got := sortInts(workersOf(master)); !equalInts(got, sortInts(old)) {
				t.Errorf("workers changed after a failed reload: %v, want %v", got, old)
			}
			s.onlyGeneration(1, 5)
		})
	}
}
