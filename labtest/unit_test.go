//go:build lab && linux

package labtest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// (issue 9) `--unit NAME`: the control verbs find the master through systemd's D-Bus API
// (the unit's RuntimeDirectory=, the -c FILE of its ExecStart=, its MainPID), and `baton
// status --unit` shows systemd's view beside the master's. For the socket unit (named
// without ".service") and the FD store unit (with a control_socket outside its runtime
// directory): status, status --json, reload --wait and upgrade --wait through --unit, each
// agreeing with `systemctl show`; with the runtime directory's socket removed, --unit
// still finds the master through the config's control_socket. Then, the FD store unit
// stopped and a master of the same config started outside it, status --unit says they
// disagree, and the other verbs refuse the inactive unit (exit 3). status --unit of an
// instance that does not run shows systemd's view and exits 3; a unit systemd does not
// know is refused with exit 3.
func TestUnitFlag(t *testing.T) {
	t.Run("socket", func(t *testing.T) { unitFlag(t, roleSocket, "us", 18150, false) })
	t.Run("fdstore, control_socket elsewhere", func(t *testing.T) { unitFlag(t, roleFDStore, "uf", 18151, true) })
}

// unitStatus is `baton status --unit --json` as far as the test reads it.
type unitStatus struct {
	OK     bool `json:"ok"`
	Status *struct {
		PID  int  `json:"pid"`
		Main bool `json:"main"`
	} `json:"status"`
	Systemd *struct {
		Unit          string   `json:"unit"`
		ActiveState   string   `json:"active_state"`
		MainPID       int      `json:"main_pid"`
		NRestarts     *uint32  `json:"n_restarts"`
		FDStore       *uint32  `json:"fd_store"`
		StatusText    string   `json:"status_text"`
		Disagreements []string `json:"disagreements"`
	} `json:"systemd"`
}

func unitFlag(t *testing.T, r role, inst string, port int, elsewhere bool) {
	in := newInstance(t, r, inst, port)
	if in.Control == "" {
		t.Skipf("%s has no RuntimeDirectory=", in.Unit.Name)
	}
	dir := fmt.Sprintf("/run/labtest-%s-elsewhere", inst)
	other := filepath.Join(dir, "control.sock")
	if elsewhere {
		// Outside the runtime directory, so writable only where the admin says so
		// (ProtectSystem=strict; units/README.md, Hardening).
		run(t, "mkdir", "-p", dir)
		in.serviceDropIn("ReadWritePaths=" + dir)
		in.conf.Top = fmt.Sprintf("control_socket = %q", other)
		t.Cleanup(func() { lab.exec("", "rm", "-rf", dir) })
	}
	baton := filepath.Join(lab.Bin, "baton")
	name := strings.TrimSuffix(in.Name, ".service") // baton@us: --unit adds ".service"
	in.start()
	first := in.mainPID()

	// status --unit agrees with systemctl show.
	agree := func(master int, when string) {
		t.Helper()
		out, errOut, rc := runRC(t, baton, "status", "--unit", name)
		if rc != 0 {
			t.Fatalf("%s: baton status --unit %s: exit %d: %s%s", when, name, rc, out, errOut)
		}
		t.Logf("%s: baton status --unit %s:\n%s", when, name, out)
		st := show(t, in.Name, "NRestarts", "NFileDescriptorStore")
		for _, want := range []string{
			fmt.Sprintf("in charge, pid %d\n", master),
			fmt.Sprintf("systemd %s active (running), MainPID %d, restarts %s, FD store %s", in.Name, master, st["NRestarts"], st["NFileDescriptorStore"]),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: baton status --unit says\n%s\nwant a line with %q", when, out, want)
			}
		}
		if strings.Contains(out, "DISAGREES") || strings.Contains(out, "unknown") {
			t.Errorf("%s: baton status --unit says\n%s\nwant agreement, every count known", when, out)
		}
		var js unitStatus
		out = run(t, baton, "status", "--json", "--unit", in.Name)
		if err := json.Unmarshal([]byte(out), &js); err != nil || js.Status == nil || js.Systemd == nil {
			t.Fatalf("%s: status --json --unit: %v\n%s", when, err, out)
		}
		if s := js.Systemd; !js.OK || js.Status.PID != master || s.MainPID != master || s.ActiveState != "active" ||
			s.NRestarts == nil || s.FDStore == nil || fmt.Sprint(*s.FDStore) != st["NFileDescriptorStore"] || len(s.Disagreements) > 0 {
			t.Errorf("%s: status --json --unit: %s", when, out)
		}
	}
	agree(first, "started")

	if out, errOut, rc := runRC(t, baton, "reload", "--wait", "--unit", name); rc != 0 {
		t.Fatalf("baton reload --wait --unit: exit %d: %s%s", rc, out, errOut)
	}
	if m := in.mainPID(); m != first {
		t.Fatalf("after reload --unit: MainPID %d, want %d", m, first)
	}

	c1 := cursor(t)
	if out, errOut, rc := runRC(t, baton, "upgrade", "--wait", "--unit", name); rc != 0 {
		t.Fatalf("baton upgrade --wait --unit: exit %d: %s%s", rc, out, errOut)
	}
	second := in.newMaster(c1, first)
	in.waitMainPID(second)
	waitGone(t, 10*time.Second, first)
	agree(second, "upgraded")

	if elsewhere {
		// The runtime directory's socket gone, the config's control_socket is left.
		run(t, "rm", "-f", in.Control)
		agree(second, "runtime socket removed")

		// A master outside the unit, on the unit's config, while the unit is inactive:
		// status --unit finds it through ExecStart='s -c FILE and says they disagree.
		run(t, "systemctl", "stop", in.Name)
		stray := "labtest-stray-" + inst
		run(t, "systemd-run", "--unit", stray, "--collect", baton, "run", "-c", in.Config)
		t.Cleanup(func() { lab.exec("", "systemctl", "stop", stray) })
		waitFor(t, 10*time.Second, "the stray master on "+other, func() (bool, string) {
			out, errOut, rc := runRC(t, baton, "status", "--socket", other)
			return rc == 0, out + errOut
		})
		out, errOut, rc := runRC(t, baton, "status", "--unit", name)
		t.Logf("unit stopped, a master outside it: baton status --unit %s:\n%s", name, out)
		want := fmt.Sprintf("DISAGREES  systemd says %s is inactive (dead), yet master %d answers", in.Name, showInt(t, stray+".service", "MainPID"))
		if rc != 0 || !strings.Contains(out, want) {
			t.Errorf("status --unit of an inactive unit whose master answers: exit %d\n%s%s\nwant a line with %q", rc, out, errOut, want)
		}
		if out, errOut, rc := runRC(t, baton, "reload", "--unit", name); rc != 3 || !strings.Contains(errOut, "is inactive (dead): no master runs") {
			t.Errorf("reload --unit of an inactive unit: exit %d: %s%s; want 3, \"is inactive (dead): no master runs\"", rc, out, errOut)
		}
	}

	// An instance of the template that does not run: loaded, inactive, no master.
	idle := strings.Replace(name, "@"+inst, "@labtest-idle", 1)
	if out, errOut, rc := runRC(t, baton, "status", "--unit", idle); rc != 3 || !strings.Contains(out, "inactive (dead), MainPID 0") || !strings.Contains(errOut, "no master answers") {
		t.Errorf("status --unit %s: exit %d: %s%s; want 3, systemd's view, \"no master answers\"", idle, rc, out, errOut)
	}
	nosuch := "labtest-nosuch-" + inst
	if out, errOut, rc := runRC(t, baton, "upgrade", "--unit", nosuch); rc != 3 || !strings.Contains(errOut, "not-found") {
		t.Errorf("upgrade --unit %s: exit %d: %s%s; want 3, \"not-found\"", nosuch, rc, out, errOut)
	}
}
