//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

func TestNormalizeUnit(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"baton@web", "baton@web.service"},
		{"baton@web.service", "baton@web.service"},
		{"baton-fdstore@api", "baton-fdstore@api.service"},
		{"baton@web.1", "baton@web.1.service"}, // an instance with a dot has no unit type
		{"myapp", "myapp.service"},
		{`baton@a\x2db`, `baton@a\x2db.service`},
		// Refused: not a name, not a service, a template, a path, a newline.
		{"", ""},
		{"baton@web.socket", ""},
		{"baton@.service", ""},
		{"baton@", ""},
		{"@web", ""},
		{"a@b@c", ""},
		{".service", ""},
		{"../../etc/passwd", ""},
		{"baton@web\n", ""},
		{"baton web", ""},
		{"/org/freedesktop/systemd1", ""},
		{strings.Repeat("a", 256), ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normalizeUnit(tc.in)
			if tc.want == "" {
				if err == nil || !errors.Is(err, errUnitName) {
					t.Errorf("got %q %v, want errUnitName", got, err)
				}
				return
			}
			if got != tc.want || err != nil {
				t.Errorf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestExecStartFlags(t *testing.T) {
	for _, tc := range []struct {
		name          string
		argv          []string
		file, control string
	}{
		{"shipped unit", []string{"/usr/bin/baton", "run", "-c", "/etc/baton/web.toml", "--pidfile", "/run/baton/web/baton.pid"}, "/etc/baton/web.toml", ""},
		{"equals", []string{"baton", "run", "--pidfile=/x.pid", "-c=/a.toml"}, "/a.toml", ""},
		{"double dash", []string{"baton", "run", "--c", "/a.toml", "--control", "/run/ctl.sock"}, "/a.toml", "/run/ctl.sock"},
		{"control only", []string{"baton", "run", "--control=@ctl", "--", "/srv/app", "-c", "/not/ours"}, "", "@ctl"},
		{"worker's -c after --", []string{"baton", "run", "--", "/srv/app", "-c", "/not/ours"}, "", ""},
		{"worker's -c after a non-flag", []string{"baton", "run", "/srv/app", "-c", "/not/ours"}, "", ""},
		{"a value that looks like a flag", []string{"baton", "run", "--pidfile", "-c", "/a.toml"}, "", ""}, // as the flag package reads it
		{"missing value", []string{"baton", "run", "-c"}, "", ""},
		{"systemd expands it at exec", []string{"baton", "run", "-c", "${CONF}"}, "", ""},
		{"last one wins", []string{"baton", "run", "-c", "/a.toml", "-c", "/b.toml"}, "/b.toml", ""},
		{"not run", []string{"/usr/bin/baton", "check", "-c", "/a.toml"}, "", ""},
		{"not baton", []string{"/usr/sbin/nginx", "-c", "/etc/nginx.conf"}, "", ""},
		{"empty", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, control := execStartFlags(tc.argv)
			if file != tc.file || control != tc.control {
				t.Errorf("%q: got %q %q, want %q %q", tc.argv, file, control, tc.file, tc.control)
			}
		})
	}
}

// fill takes the properties as go-systemd returns them (GetAll's variants, unwrapped); a
// property an older systemd lacks reads as unknown, not 0.
func TestUnitFill(t *testing.T) {
	u := &unitView{Unit: "baton@web.service"}
	u.fill(map[string]any{
		"MainPID":              uint32(42),
		"NRestarts":            uint32(3),
		"NFileDescriptorStore": uint32(2),
		"StatusText":           "generation 1: 2/2 workers ready",
		"RuntimeDirectory":     []string{"baton/web"},
		"TimeoutStartUSec":     uint64(120_000_000),
		"ExecStart": [][]any{{"/usr/bin/baton", []string{"/usr/bin/baton", "run", "-c", "/etc/baton/web.toml"},
			false, uint64(0), uint64(0), uint64(0), uint64(0), uint32(0), int32(0), int32(0)}},
	})
	if u.MainPID != 42 || *u.NRestarts != 3 || *u.FDStore != 2 || u.Config != "/etc/baton/web.toml" ||
		u.reloadTimeout != 2*time.Minute || !slices.Equal(u.RuntimeDirectory, []string{"baton/web"}) {
		t.Errorf("got %+v", u)
	}
	old := &unitView{Unit: "x.service"}
	old.fill(map[string]any{"MainPID": uint32(7), "TimeoutStartUSec": ^uint64(0)}) // infinity
	var out bytes.Buffer
	printUnit(&out, old, nil)
	if got := out.String(); !strings.Contains(got, "restarts unknown, FD store unknown") || old.reloadTimeout != 0 {
		t.Errorf("a systemd without NRestarts and NFileDescriptorStore: %q, reload timeout %s", got, old.reloadTimeout)
	}
	b, _ := json.Marshal(old)
	if !strings.Contains(string(b), `"fd_store":null`) {
		t.Errorf("JSON says an unknown FD store count is %s", b)
	}
}

func TestUnitControlCandidates(t *testing.T) {
	dir := t.TempDir()
	moved := filepath.Join(dir, "moved.toml")
	os.WriteFile(moved, []byte(`control_socket = "/srv/ctl.sock"`+"\n"), 0o644)
	plain := filepath.Join(dir, "plain.toml")
	os.WriteFile(plain, []byte("[worker]\ncount = 2\n"), 0o644)
	t.Setenv("RUNTIME_DIRECTORY", "")
	for _, tc := range []struct {
		name string
		u    unitView
		want []string
	}{
		{"shipped unit", unitView{RuntimeDirectory: []string{"baton/web"}, Config: plain}, []string{"/run/baton/web/control.sock"}},
		{"control_socket elsewhere", unitView{RuntimeDirectory: []string{"baton/web"}, Config: moved}, []string{"/run/baton/web/control.sock", "/srv/ctl.sock"}},
		{"no RuntimeDirectory", unitView{Config: moved}, []string{"/srv/ctl.sock"}},
		{"--control in ExecStart", unitView{control: "@ctl", Config: moved}, []string{"@ctl", "/srv/ctl.sock"}},
		{"unreadable config, runtime dir left", unitView{RuntimeDirectory: []string{"baton/web"}, Config: filepath.Join(dir, "gone.toml")}, []string{"/run/baton/web/control.sock"}},
		{"no way out of /run", unitView{RuntimeDirectory: []string{"../../etc"}}, []string{"/run/etc/control.sock"}},
		{"nothing", unitView{Config: plain}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.Unit = "x.service"
			got, err := tc.u.controlCandidates()
			if tc.want == nil {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

// The rules by which status --unit says systemd and the master disagree.
func TestUnitDisagreements(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	active := unitView{Unit: "baton@web.service", LoadState: "loaded", ActiveState: "active", SubState: "running", MainPID: 100, reloadTimeout: 2 * time.Minute}
	with := func(f func(u *unitView)) unitView { u := active; f(&u); return u }
	serving := &supervisor.Status{PID: 100, Generation: 1, Main: true, State: "serving"}
	upgrading := &supervisor.Status{PID: 100, Generation: 1, Main: true, State: "upgrading", Upgrade: &supervisor.UpgradeStatus{NewPID: 200}}
	for _, tc := range []struct {
		name string
		u    unitView
		st   *supervisor.Status
		want []string // substrings, one per disagreement
	}{
		{"agree", active, serving, nil},
		{"no master answered", active, nil, nil},
		{"upgrade: MainPID still the old master", active, upgrading, nil},
		{"upgrade: MainPID already the new master", with(func(u *unitView) { u.MainPID = 200 }), upgrading, nil},
		{"MainPID is another process", with(func(u *unitView) { u.MainPID = 300 }), serving, []string{"MainPID is 300, but the master in charge is 100"}},
		{"answered by an uncommitted new master", with(func(u *unitView) { u.MainPID = 300 }), &supervisor.Status{PID: 100}, []string{"MainPID is 300, but the master that answered (a new master, not committed) is 100"}},
		{"no MainPID", with(func(u *unitView) { u.MainPID = 0 }), serving, []string{"knows no main process"}},
		{"inactive, a master answers", with(func(u *unitView) { u.ActiveState, u.SubState, u.MainPID = "inactive", "dead", 0 }), serving, []string{"is inactive (dead), yet master 100 answers"}},
		{"failed, a master answers", with(func(u *unitView) { u.ActiveState, u.SubState = "failed", "failed" }), serving, []string{"is failed (failed)"}},
		{"reloading within the timeout", with(func(u *unitView) { u.ActiveState, u.Since = "reloading", now.Add(-time.Minute) }), serving, nil},
		{"reloading too long, master idle", with(func(u *unitView) { u.ActiveState, u.Since = "reloading", now.Add(-3*time.Minute) }), serving,
			[]string{"reloading baton@web.service for 3m0s, longer than its TimeoutStartSec=2m0s; the master has no reload in flight"}},
		{"reloading too long, master reloading", with(func(u *unitView) { u.ActiveState, u.Since = "reloading", now.Add(-3*time.Minute) }),
			&supervisor.Status{PID: 100, Main: true, Reload: &supervisor.ReloadStatus{Ready: 1, Wanted: 2}}, []string{"1/2 new workers ready"}},
		{"reloading, no timeout", with(func(u *unitView) { u.ActiveState, u.Since, u.reloadTimeout = "reloading", now.Add(-time.Hour), 0 }), serving, nil},
		{"two at once", with(func(u *unitView) { u.MainPID, u.ActiveState, u.Since = 300, "reloading", now.Add(-3*time.Minute) }), serving,
			[]string{"MainPID is 300", "longer than its TimeoutStartSec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.u.disagreements(tc.st, now)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("disagreement %d: %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

// status --unit --json: the master's reply as without --unit, and systemd's view under
// "systemd" with the disagreements.
func TestUnitJSON(t *testing.T) {
	u := &unitView{Unit: "baton@web.service", LoadState: "loaded", ActiveState: "active", SubState: "running", MainPID: 300}
	reply := supervisor.ControlReply{OK: true, Status: &supervisor.Status{PID: 100, Main: true}}
	var got struct {
		OK      bool               `json:"ok"`
		Status  *supervisor.Status `json:"status"`
		Systemd *unitView          `json:"systemd"`
	}
	if err := json.Unmarshal([]byte(jsonUnit(reply, u)), &got); err != nil {
		t.Fatal(err)
	}
	if !got.OK || got.Status == nil || got.Status.PID != 100 || got.Systemd == nil || got.Systemd.MainPID != 300 || len(got.Systemd.Disagreements) != 1 {
		t.Errorf("got %+v %+v", got, got.Systemd)
	}
	if b := jsonUnit(reply, nil); strings.Contains(b, "systemd") {
		t.Errorf("without --unit: %s", b)
	}
}

// Usage errors of --unit are found before anything asks systemd.
func TestUnitUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--unit", "baton@web.socket"},
		{"--unit", "baton@web", "-c", "/etc/baton/web.toml"},
		{"--unit", "baton@web", "--socket", "/run/x.sock"},
		{"--unit", "a/b"},
	} {
		var out, errOut bytes.Buffer
		if code := control("status", args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a reason", args, code, errOut.String())
		}
	}
}
