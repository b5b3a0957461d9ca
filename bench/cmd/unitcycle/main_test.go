//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// fakeBus plays systemd: MainPID is old while old runs, then next; ActiveState is state.
type fakeBus struct {
	old, next int
	state     string
	reads     atomic.Int64
}

func (b *fakeBus) mainPID(context.Context, string) (int, error) {
	b.reads.Add(1)
	if b.old != 0 && running(b.old) {
		return b.old, nil
	}
	return b.next, nil
}

func (b *fakeBus) activeState(context.Context, string) (string, error) { return b.state, nil }
func (b *fakeBus) close()                                              {}

// running reports whether pid runs and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// start runs argv as a process the test ends and reaps.
func start(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	})
	return cmd
}

// fakeSystemctl writes a systemctl that logs its arguments and runs script.
func fakeSystemctl(t *testing.T, script string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	path, log = filepath.Join(dir, "systemctl"), filepath.Join(dir, "args")
	body := "#!/bin/sh\necho \"$*\" >>" + log + "\n" + script + "\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func TestCycles(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		state    string
		wantErr  string
		wantArgs string
	}{
		{"upgrade: kill, MainPID changes, old master gone", "upgrade", "active", "", "kill -s USR2 u.service"},
		{"reload: reload returns, old workers gone", "reload", "active", "", "reload u.service"},
		{"a unit not active after the cycle stops the run", "upgrade", "failed", `is "failed", want active`, "kill -s USR2 u.service"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The "master": a shell with two "workers". The fake systemctl ends the master
			// (upgrade) or the workers (reload), as baton would, by pid.
			master := start(t, "/bin/sh", "-c", "sleep 60 & sleep 60 & wait")
			bus := &fakeBus{old: master.Process.Pid, next: master.Process.Pid, state: tc.state}
			var workers []int
			for deadline := time.Now().Add(10 * time.Second); len(workers) < 2; {
				if workers = procs.Children(master.Process.Pid); time.Now().After(deadline) {
					t.Fatalf("the fake master has %d children", len(workers))
				}
				time.Sleep(time.Millisecond) // polling for the fake workers to start
			}
			script := "kill " + strconv.Itoa(master.Process.Pid)
			if tc.kind == "reload" {
				script = "kill " + strconv.Itoa(workers[0]) + " " + strconv.Itoa(workers[1])
			} else {
				bus.next = 999999 // the new master, once the old one is gone
			}
			path, log := fakeSystemctl(t, script)
			s := settings{unit: "u.service", kind: tc.kind, cycles: 1, gap: 0, timeout: 10 * time.Second, poll: time.Millisecond,
				systemctlPath: path, systemdConnect: func(context.Context) (unitBus, error) { return bus, nil }}
			out, err := s.runAll()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			args, _ := os.ReadFile(log)
			if got := strings.TrimSpace(string(args)); got != tc.wantArgs {
				t.Errorf("systemctl %q, want %q", got, tc.wantArgs)
			}
			if len(out.Cycles) != 1 {
				t.Fatalf("%d cycles, want 1", len(out.Cycles))
			}
			c := out.Cycles[0]
			if len(c.Ends) != len(phases[tc.kind]) {
				t.Fatalf("%d phase ends, want %d", len(c.Ends), len(phases[tc.kind]))
			}
			prev := c.Start
			for i, e := range c.Ends {
				if e.Before(prev) {
					t.Errorf("phase %d ends at %v, before the one before (%v)", i, e, prev)
				}
				prev = e
			}
			if c.OldPID != master.Process.Pid || c.NewPID != bus.next {
				t.Errorf("old %d new %d, want %d and %d", c.OldPID, c.NewPID, master.Process.Pid, bus.next)
			}
			for _, w := range workers {
				if tc.kind == "reload" && running(w) {
					t.Errorf("old worker %d still runs at the end of the cycle", w)
				}
			}
			if tc.kind == "upgrade" && running(master.Process.Pid) {
				t.Errorf("old master still runs at the end of the cycle")
			}
		})
	}
}

func TestRunOutput(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"bad kind", []string{"-kind", "rollback"}, 2, ""},
		{"no main process", []string{"-kind", "reload", "-cycles", "3"}, 1, "has no main process"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runWith(tc.args, &out, &errOut, func(context.Context) (unitBus, error) { return &fakeBus{state: "active"}, nil })
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.wantCode, errOut.String())
			}
			if tc.wantCode == 2 {
				return
			}
			var o output
			if err := json.Unmarshal(out.Bytes(), &o); err != nil {
				t.Fatalf("stdout is not JSON: %v: %s", err, out.String())
			}
			if !strings.Contains(o.Error, tc.wantErr) || len(o.Cycles) != 0 || len(o.Phases) != 2 {
				t.Errorf("output %+v, want error %q, no cycles, 2 phases", o, tc.wantErr)
			}
		})
	}
}
