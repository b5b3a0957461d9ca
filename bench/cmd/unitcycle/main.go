//go:build linux

// Command unitcycle runs baton's upgrade or reload cycles on a systemd service the way an
// operator does, with systemctl, and prints when each cycle and each of its phases ended,
// as JSON. It is a part of baton's benchmark: the driver runs it inside a systemd-lab
// container, where systemd is PID 1, while the load generator runs beside it.
//
//	unitcycle -unit baton@bench.service -kind upgrade|reload [-cycles 100] [-gap 50ms]
//	    [-timeout 60s] [-poll 2ms]
//
// A cycle of kind upgrade is `systemctl kill -s USR2 UNIT` (every process of the unit's
// cgroup gets the signal, as the command does by default), then the wait until systemd's
// MainPID of the unit names another process and the old main process has exited. Its
// phases end when systemctl returned, when MainPID changed, and when the old master was
// gone. A cycle of kind reload is `systemctl reload UNIT`, which returns when the unit's
// ExecReload= did (`baton reload --wait`: the new workers are ready); its second phase
// ends when every worker the master had before the reload has exited.
//
// MainPID is read over systemd's private D-Bus socket, the property `systemctl show -p
// MainPID` prints, every -poll while the old master runs; the old master and workers are
// watched through pidfds, so their exits are seen when they happen. After each cycle the
// unit must be active, or the run stops there. The next cycle starts -gap after the last
// phase of the one before.
//
// Standard output is one JSON object: {"unit", "kind", "phases": [names], "cycles":
// [{"start", "ends": [one time per phase], "old_pid", "new_pid"}], "error"}. The exit
// status is 0 when every cycle completed, 1 when one failed (the cycles before it are
// printed), 2 on bad flags.
//
// See systemctl(1) (kill, reload, show) and org.freedesktop.systemd1(5) (MainPID).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"github.com/baton-supervisor/baton/bench/internal/procs"
)

// phases names the phases of each kind, in order.
var phases = map[string][]string{
	"upgrade": {"systemctl kill -s USR2 returned", "→ MainPID names the new master", "→ old master gone"},
	"reload":  {"systemctl reload returned (new workers ready)", "→ old workers gone"},
}

// cycleOut is one cycle in the output.
type cycleOut struct {
	Start  time.Time   `json:"start"`
	Ends   []time.Time `json:"ends"`
	OldPID int         `json:"old_pid"`
	NewPID int         `json:"new_pid"`
}

// output is what unitcycle prints.
type output struct {
	Unit   string     `json:"unit"`
	Kind   string     `json:"kind"`
	Phases []string   `json:"phases"`
	Cycles []cycleOut `json:"cycles"`
	Error  string     `json:"error,omitempty"`
}

// settings are the flags.
type settings struct {
	unit, kind     string
	cycles         int
	gap, timeout   time.Duration
	poll           time.Duration
	systemctlPath  string
	systemdConnect func(context.Context) (unitBus, error)
}

// unitBus is what a cycle asks systemd.
type unitBus interface {
	mainPID(ctx context.Context, unit string) (int, error)
	activeState(ctx context.Context, unit string) (string, error)
	close()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, stdout, stderr, connectSystemd)
}

// runWith is run with the connection to systemd given.
func runWith(args []string, stdout, stderr io.Writer, connect func(context.Context) (unitBus, error)) int {
	s := settings{systemdConnect: connect}
	fs := flag.NewFlagSet("unitcycle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.unit, "unit", "baton@bench.service", "the service")
	fs.StringVar(&s.kind, "kind", "upgrade", "upgrade or reload")
	fs.IntVar(&s.cycles, "cycles", 100, "cycles to run")
	fs.DurationVar(&s.gap, "gap", 50*time.Millisecond, "pause between two cycles")
	fs.DurationVar(&s.timeout, "timeout", 60*time.Second, "limit of each cycle")
	fs.DurationVar(&s.poll, "poll", 2*time.Millisecond, "interval of the MainPID reads")
	fs.StringVar(&s.systemctlPath, "systemctl", "systemctl", "the systemctl program")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if phases[s.kind] == nil || s.cycles < 1 || s.poll <= 0 || s.timeout <= 0 {
		fmt.Fprintf(stderr, "unitcycle: -kind %q -cycles %d -poll %v -timeout %v: want upgrade or reload, and positive numbers\n", s.kind, s.cycles, s.poll, s.timeout)
		return 2
	}
	out, err := s.runAll()
	if err != nil {
		out.Error = err.Error()
	}
	if jerr := json.NewEncoder(stdout).Encode(out); jerr != nil {
		fmt.Fprintln(stderr, "unitcycle:", jerr)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "unitcycle:", err)
		return 1
	}
	return 0
}

// runAll runs the cycles, stopping at the first that fails.
func (s settings) runAll() (output, error) {
	out := output{Unit: s.unit, Kind: s.kind, Phases: phases[s.kind], Cycles: []cycleOut{}}
	bus, err := s.systemdConnect(context.Background())
	if err != nil {
		return out, err
	}
	defer bus.close()
	for i := range s.cycles {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		c, err := s.cycle(ctx, bus)
		cancel()
		if err != nil {
			return out, fmt.Errorf("cycle %d: %w", i+1, err)
		}
		out.Cycles = append(out.Cycles, c)
		if i < s.cycles-1 {
			time.Sleep(s.gap) // the space between cycles, under load
		}
	}
	return out, nil
}

// cycle runs one cycle and checks the unit is active after it.
func (s settings) cycle(ctx context.Context, bus unitBus) (cycleOut, error) {
	old, err := bus.mainPID(ctx, s.unit)
	if err != nil {
		return cycleOut{}, err
	}
	if old == 0 {
		return cycleOut{}, fmt.Errorf("%s has no main process", s.unit)
	}
	var c cycleOut
	if s.kind == "upgrade" {
		c, err = s.upgrade(ctx, bus, old)
	} else {
		c, err = s.reload(ctx, old)
	}
	if err != nil {
		return c, err
	}
	for i := 1; i < len(c.Ends); i++ {
		c.Ends[i] = latest(c.Ends[i], c.Ends[i-1])
	}
	state, err := bus.activeState(ctx, s.unit)
	if err != nil {
		return c, err
	}
	if state != "active" {
		return c, fmt.Errorf("after the %s, %s is %q, want active", s.kind, s.unit, state)
	}
	return c, nil
}

// upgrade: systemctl kill -s USR2; MainPID another process; the old master gone.
func (s settings) upgrade(ctx context.Context, bus unitBus, old int) (cycleOut, error) {
	master, err := procs.Open(old)
	if err != nil {
		return cycleOut{}, err
	}
	defer master.Close()
	c := cycleOut{OldPID: old, Start: time.Now()}
	if err := s.systemctl(ctx, "kill", "-s", "USR2", s.unit); err != nil {
		return c, err
	}
	killed := time.Now()
	deadline, _ := ctx.Deadline()
	var changed, gone time.Time
	for changed.IsZero() || gone.IsZero() {
		if changed.IsZero() {
			pid, err := bus.mainPID(ctx, s.unit)
			if err != nil {
				return c, err
			}
			if pid != 0 && pid != old {
				changed, c.NewPID = time.Now(), pid
				continue // the old master exits right after: look at once
			}
		}
		var wait time.Duration
		switch {
		case !gone.IsZero():
			wait = 0 // only MainPID is awaited: look, then sleep below
		case !changed.IsZero():
			wait = max(0, time.Until(deadline)) // only the exit is awaited
		default:
			wait = s.poll // both: the exit, and the next MainPID read
		}
		exited, err := master.Exited(wait)
		if err != nil {
			return c, err
		}
		if exited && gone.IsZero() {
			gone = time.Now()
		}
		if !gone.IsZero() && changed.IsZero() {
			time.Sleep(s.poll) // polling systemd's MainPID
		}
		if ctx.Err() != nil {
			return c, fmt.Errorf("upgrade of %s from master %d: MainPID changed %t, old master gone %t: %w",
				s.unit, old, !changed.IsZero(), !gone.IsZero(), ctx.Err())
		}
	}
	c.Ends = []time.Time{killed, changed, gone}
	return c, nil
}

// reload: systemctl reload; the workers the master had before it gone.
func (s settings) reload(ctx context.Context, master int) (cycleOut, error) {
	olds, err := procs.OpenAll(procs.Children(master))
	if err != nil {
		return cycleOut{}, err
	}
	defer procs.CloseAll(olds)
	c := cycleOut{OldPID: master, NewPID: master, Start: time.Now()}
	if err := s.systemctl(ctx, "reload", s.unit); err != nil {
		return c, err
	}
	done := time.Now()
	gone := done
	deadline, _ := ctx.Deadline()
	for _, p := range olds {
		exited, err := p.Exited(max(0, time.Until(deadline)))
		if err != nil {
			return c, err
		}
		if !exited {
			return c, fmt.Errorf("old worker %d still running after the reload: %w", p.PID, os.ErrDeadlineExceeded)
		}
		gone = latest(gone, time.Now())
	}
	c.Ends = []time.Time{done, gone}
	return c, nil
}

// systemctl runs `systemctl ARGS…` and returns an error with its output when it fails.
func (s settings) systemctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, s.systemctlPath, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// systemdBus is unitBus over systemd's private socket (/run/systemd/private), as root.
type systemdBus struct{ c *sd.Conn }

func connectSystemd(ctx context.Context) (unitBus, error) {
	c, err := sd.NewSystemdConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("unitcycle: connect to systemd: %w", err)
	}
	return systemdBus{c}, nil
}

func (b systemdBus) mainPID(ctx context.Context, unit string) (int, error) {
	p, err := b.c.GetServicePropertyContext(ctx, unit, "MainPID")
	if err != nil {
		return 0, fmt.Errorf("unitcycle: MainPID of %s: %w", unit, err)
	}
	pid, ok := p.Value.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("unitcycle: MainPID of %s: %w: %v", unit, errUnexpected, p.Value)
	}
	return int(pid), nil
}

func (b systemdBus) activeState(ctx context.Context, unit string) (string, error) {
	p, err := b.c.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return "", fmt.Errorf("unitcycle: ActiveState of %s: %w", unit, err)
	}
	state, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("unitcycle: ActiveState of %s: %w: %v", unit, errUnexpected, p.Value)
	}
	return state, nil
}

func (b systemdBus) close() { b.c.Close() }

// errUnexpected is a D-Bus property of an unexpected type.
var errUnexpected = errors.New("unexpected property type")
