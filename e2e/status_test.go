//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// gatedConfig is a config whose worker of slot gated (0: none) waits for the file "gate"
// in the service directory before it execs hello: a new generation held not ready.
func (s *service) gatedConfig(workers, gated int, extra string) string {
	return fmt.Sprintf(`pidfile = "baton.pid"
control_socket = "baton.sock"

[[listen]]
name = "http"
address = %q

[worker]
command = [%q, %q, "-drain", "100ms"]
count = %d
env = { BATON_E2E_HELPER = "worker", TESTWORKER = "gate", TESTWORKER_DIR = %q, TESTWORKER_SLOT = %q, TESTWORKER_GATE = "gate", GODEBUG = "containermaxprocs=0,updatemaxprocs=0" }
stop_timeout = "5s"
start_timeout = "60s"

%s
`, s.addr, bin.self, bin.hello, workers, s.dir, strconv.Itoa(gated), extra)
}

// TestStatusDuringUpgrade: under load, while the new master's second worker is held not
// ready, `baton status --json` to the old master lists both generations (pids, versions,
// the new master's workers and their states) and the countdown to the upgrade timeout;
// once it is committed, the new master's status carries the history across.
func TestStatusDuringUpgrade(t *testing.T) {
	s := newService(t)
	up := "[upgrade]\ncommit = \"auto\"\nsoak = \"0s\"\ntimeout = \"60s\"\n"
	old := s.run(s.gatedConfig(2, 0, up))
	stop := s.load(4)
	s.install(bin.baton2)
	s.writeConfig(s.gatedConfig(2, 2, up))
	if out, code := s.baton("upgrade", "-c", "baton.toml"); code != 0 {
		t.Fatalf("upgrade = %d %q", code, out)
	}
	var st supervisor.Status
	waitFor(t, 30*time.Second, func() bool {
		st = s.status()
		n := st.Upgrade
		return n != nil && n.NewMaster != nil && n.NewMaster.Ready == 1 && len(n.NewMaster.Workers) == 2
	}, "the old master's status to show the new master with 1 of 2 workers ready")
	n := st.Upgrade.NewMaster
	if st.PID != old || st.Version != "v1" || st.Exe == "" || !st.Main {
		t.Errorf("old master: pid %d version %q exe %q main %v, want %d v1", st.PID, st.Version, st.Exe, st.Main, old)
	}
	if n.PID != st.Upgrade.NewPID || n.Generation != 2 || n.Version != "v2" || n.State != "joining" {
		t.Errorf("new master in status: %+v", n)
	}
	states := map[int]string{}
	for _, w := range n.Workers {
		states[w.Slot] = w.State
		if w.PID <= 0 || w.Uptime == "" {
			t.Errorf("new worker without pid or age: %+v", w)
		}
	}
	if states[1] != "ready" || states[2] != "starting" {
		t.Errorf("new workers' states %v, want 1 ready, 2 starting", states)
	}
	if st.Step == nil || st.Step.Name != "new-master-starting" || st.Step.Deadline == nil ||
		!strings.Contains(st.Step.Text, "1 of 2 workers ready") || !strings.Contains(st.Step.Text, "times out in") {
		t.Errorf("step %+v, want the wait for the new master with its countdown", st.Step)
	} else if left := time.Until(*st.Step.Deadline); left <= 0 || left > 60*time.Second {
		t.Errorf("deadline %v is %v away, want within the 60s timeout", st.Step.Deadline, left)
	}
	text, code := s.baton("status", "-c", "baton.toml")
	t.Logf("baton status during the upgrade:\n%s", text)
	if code != 0 || !strings.Contains(text, "new master") || !strings.Contains(text, "times out in") || !strings.Contains(text, "v2") {
		t.Errorf("status text = %d\n%s", code, text)
	}

	if err := os.WriteFile(s.path("gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { return !alive(old) }, "the old master to exit after the commit")
	st = s.status()
	if st.Generation != 2 || st.Version != "v2" || st.Upgrade != nil || st.LastError != "" {
		t.Errorf("after the commit: generation %d version %q upgrade %+v last error %q", st.Generation, st.Version, st.Upgrade, st.LastError)
	}
	if h := st.History; len(h) < 2 || h[0].Event != "start" || h[0].Generation != 1 || h[len(h)-1].Event != "upgrade" || h[len(h)-1].Result != "ok" || h[len(h)-1].Generation != 2 {
		t.Errorf("history after the commit: %+v", h)
	}
	if n, errs := stop(); len(errs) > 0 {
		t.Errorf("%d of %d requests failed during the upgrade: %v", len(errs), n, errs[0])
	}
}

// TestUpgradeWaitSaysWhyItRolledBack: the reason the new master fails reaches `baton
// upgrade --wait`, `baton status` and the history: its config error with file:line, and,
// when it is killed without a word, the signal.
func TestUpgradeWaitSaysWhyItRolledBack(t *testing.T) {
	t.Run("config error", func(t *testing.T) {
		s := newService(t)
		s.run(controlConfig + s.helloConfig(2, ""))
		s.writeConfig(controlConfig + "\n[worker]\ncount = \"three\"\n")
		out, code := s.baton("upgrade", "-c", "baton.toml", "--wait")
		if code == 0 || !strings.Contains(out, "baton.toml:4") || !strings.Contains(out, "worker.count") {
			t.Fatalf("upgrade --wait = %d %q, want a failure naming baton.toml:4 and worker.count", code, out)
		}
		st := s.status()
		if !strings.Contains(st.LastError, "baton.toml:4") || !strings.Contains(st.Line, "upgrade rolled back") {
			t.Errorf("status: last error %q, line %q", st.LastError, st.Line)
		}
		if h := st.History[len(st.History)-1]; h.Event != "upgrade" || h.Result != "rolled back" || !strings.Contains(h.Reason, "baton.toml:4") {
			t.Errorf("history: %+v", st.History)
		}
	})
	t.Run("kill -9", func(t *testing.T) {
		s := newService(t)
		s.run(s.gatedConfig(2, 0, ""))
		s.writeConfig(s.gatedConfig(2, 1, "")) // the new master's first worker waits for a gate never opened
		cmd := exec.Command(bin.baton, "upgrade", "-c", "baton.toml", "--wait")
		cmd.Dir = s.dir
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var newPID int
		waitFor(t, 30*time.Second, func() bool {
			st := s.status()
			if st.Upgrade != nil && st.Upgrade.NewMaster != nil {
				newPID = st.Upgrade.NewPID
			}
			return newPID != 0
		}, "the new master to report its progress")
		s.signal(newPID, syscall.SIGKILL)
		err := cmd.Wait()
		if err == nil || !strings.Contains(out.String(), "killed by SIGKILL") {
			t.Fatalf("upgrade --wait = %v %q, want a failure saying killed by SIGKILL", err, out.String())
		}
		if st := s.status(); !strings.Contains(st.LastError, "killed by SIGKILL") {
			t.Errorf("status last error %q", st.LastError)
		}
		s.waitLog(`reason="exited without a word: killed by SIGKILL".*event=upgrade-rolled-back`, 1)
	})
}
