//go:build lab && linux

package labtest

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// execExited0 matches a command of systemctl show's Exec*= properties that exited 0
// (`status=0` on 252, `status=0/0` later).
var execExited0 = regexp.MustCompile(`code=exited ; status=0[ /]`)

// systemctl stop while an upgrade waits for its commit (commit = "manual", the new master
// ready), under load until the stop. Both generations must drain: each worker, old and
// new, exits 0 when its master retires it, both masters exit 0, nothing is killed, and the
// stop ends with Result=success.
//
//   - ExecStop: the units' ExecStop=baton stop --wait reaches the old master through the
//     control socket, which stops the new master and waits for it.
//   - control socket gone: ExecStop= cannot reach the master through a socket, so it sends
//     QUIT to systemd's $MAINPID, the old master.
//   - KillSignal only: no ExecStop= at all; systemd's KillSignal=SIGQUIT (KillMode=mixed:
//     the main process only) is all the old master gets.
//
// QUIT to an old master during an upgrade means commit (nginx): unless the old master
// knows the unit is stopping, it hands the service to the new master and exits, and nothing
// stops the new master before TimeoutStopSec ends in SIGKILL (this failed on 252, 254 and
// 257 until the old master asked systemd whether the unit is deactivating).
//
// The load stops before `systemctl stop`: once no worker accepts, the socket unit queues
// new connections and starts the service again after the stop (a new start, which this
// test is not about), and the FD store's sockets close on them. Each worker's exit status
// shows the drain instead.
func TestStopDuringUpgrade(t *testing.T) {
	cases := []struct {
		name       string
		inst       string
		port       int
		noControl  bool // the control socket file removed: ExecStop= QUITs $MAINPID
		noExecStop bool // ExecStop= emptied: systemd's KillSignal=SIGQUIT alone
	}{
		{"ExecStop", "su", 18130, false, false},
		{"control socket gone", "su-nc", 18131, true, false},
		{"KillSignal only", "su-ks", 18132, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t, roleSocket, tc.inst, tc.port)
			in.conf.Commit = "manual"
			// Bounds a stop that goes wrong (the units' 60 s); above the workers'
			// stop_timeout and the graceful stop's EXTEND_TIMEOUT_USEC (10 s + 5 s).
			if tc.noExecStop {
				in.serviceDropIn("TimeoutStopSec=20", "ExecStop=")
			} else {
				in.serviceDropIn("TimeoutStopSec=20")
			}
			c0 := cursor(t)
			in.start()
			old := in.mainPID()
			oldWorkers := in.waitWorkers(c0, old, 2)
			load := startLoad(t, in.HTTP, 4)
			load.waitLine(t, 10*time.Second, "answers from the old workers", servedByBodyOf(oldWorkers))
			newPID, newWorkers := in.upgradeReady(c0, old)
			load.waitLine(t, 10*time.Second, "answers from the new workers", servedByBodyOf(newWorkers))
			load.stopNoFailures(t, "requests during the upgrade")
			if tc.noControl {
				run(t, "rm", in.Control)
			}

			c1 := cursor(t)
			t0 := time.Now()
			_, errOut, rc := runRC(t, "systemctl", "stop", in.Name)
			t.Logf("systemctl stop took %s", time.Since(t0).Round(time.Millisecond))
			if rc != 0 {
				t.Errorf("systemctl stop: exit %d: %s", rc, errOut)
			}
			st := show(t, in.Name, "ActiveState", "Result", "ExecStop")
			if st["ActiveState"] != "inactive" || st["Result"] != "success" {
				t.Errorf("after systemctl stop: ActiveState=%s Result=%s, want inactive, success", st["ActiveState"], st["Result"])
			}
			if !tc.noExecStop && !execExited0.MatchString(st["ExecStop"]) {
				t.Errorf("ExecStop= did not exit 0: %s", st["ExecStop"])
			}
			es := journal(t, in.Name, c1)
			for _, s := range []string{"SIGKILL", "code=killed", "Failed with result", "timed out"} {
				if bad := containing(es, s); len(bad) > 0 {
					t.Errorf("journal: %d lines with %q, the first: %s", len(bad), s, bad[0])
				}
			}
			for _, pid := range append([]int{old, newPID}, append(oldWorkers, newWorkers...)...) {
				if alive(t, pid) {
					t.Errorf("process %d still runs after the stop", pid)
				}
			}
			// Every worker was drained by its own master, and both masters exited 0; a
			// master's last lines may be in no unit's journal.
			checks := map[string]func(entry) bool{}
			for _, m := range []int{old, newPID} {
				checks[fmt.Sprintf("master %d: master exited code=0", m)] = func(e entry) bool {
					return e.Msg() == "master exited" && e.AttrInt("pid") == m && e.Attr("code") == "0"
				}
			}
			for m, ws := range map[int][]int{old: oldWorkers, newPID: newWorkers} {
				for _, w := range ws {
					checks[fmt.Sprintf("master %d: worker %d exited 0", m, w)] = func(e entry) bool {
						return e.Msg() == "worker exited" && e.AttrInt("pid") == m && e.AttrInt("worker_pid") == w && e.Attr("how") == "exit status 0"
					}
				}
			}
			waitLines(t, 10*time.Second, "", c1, checks)
		})
	}
}
