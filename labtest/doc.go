// Package labtest proves baton's systemd integration against a real systemd: each run
// boots one container with systemd as PID 1 (../shared/systemd-lab/lab: 252 on the host's
// own /usr, 254 from bookworm-backports, 257 from trixie), installs the unit files from
// units/ with baton's path substituted, and drives them with systemctl, signals and an
// HTTP client run inside the container.
//
// The tests carry the build tag lab, so `go test ./...` skips them; they need root.
// Run them with `labtest/run.sh [252|254|257|all]` or, for the lab already chosen by
// LAB_ROOT (host, bookworm-backports, trixie), `go test -tags lab -count=1 ./labtest`.
//
// Invariants:
//
//   - One lab per test binary run, under a name of its own; it is powered off however
//     the run ends (a normal end, a failed test, a panic, a -timeout, a signal): a
//     helper process that outlives the test binary runs `lab down` when its pipe from
//     the test binary closes.
//   - Tests wait on conditions (systemctl show, the journal, the probe's output) with
//     deadlines; none sleeps to synchronise.
//   - Each test uses its own unit instance, ports and config file, and stops its units
//     when it ends.
//
// README.md in this folder says what each test proves. See systemd.service(5),
// sd_notify(3), systemctl(1), journalctl(1).
package labtest
