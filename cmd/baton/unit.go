//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/supervisor"
)

// `--unit NAME`: the control verbs find the master of a systemd service through systemd's
// D-Bus API instead of a config file or a socket path: the unit's RuntimeDirectory= (where
// a master under systemd always listens), the -c FILE and --control PATH of its
// ExecStart=, and its MainPID for `stop` when no control socket answers. `baton status
// --unit` also shows systemd's view of the service and says where it disagrees with the
// master's.

// unitTimeout bounds everything one command asks systemd: the connection and each call
// run under one context, which closes the connection when it ends.
const unitTimeout = 5 * time.Second

// Usage errors of --unit (exit 2).
var (
	errUnitName  = errors.New("not a service unit name")
	errUnitAlone = errors.New("--unit finds the control socket itself; give --unit, -c or --socket, not two of them")
)

// unitView is what systemd says about a service, as `baton status --unit --json` prints it
// under "systemd".
type unitView struct {
	Unit        string `json:"unit"`
	LoadState   string `json:"load_state"`
	ActiveState string `json:"active_state"`
	SubState    string `json:"sub_state"`
	MainPID     int    `json:"main_pid"` // 0: systemd knows no main process
	// NRestarts and FDStore are null when this systemd does not have the property.
	NRestarts        *uint32   `json:"n_restarts"`
	FDStore          *uint32   `json:"fd_store"` // NFileDescriptorStore
	StatusText       string    `json:"status_text"`
	Since            time.Time `json:"state_since,omitzero"` // StateChangeTimestamp
	RuntimeDirectory []string  `json:"runtime_directory,omitempty"`
	Config           string    `json:"config,omitempty"` // -c FILE of ExecStart=
	// Disagreements are where systemd and the master that answered tell different
	// stories (disagreements); filled in when there is a reply to compare with.
	Disagreements []string `json:"disagreements,omitempty"`

	control       string        // --control PATH of ExecStart=
	reloadTimeout time.Duration // TimeoutStartUSec, which systemd applies to a reload; 0: none
}

// normalizeUnit checks a unit name given on the command line and adds ".service" when it
// has no unit type: "baton@web" is "baton@web.service". Anything but a service instance or
// a plain service name is refused: the name goes into a D-Bus object path, and a socket or
// a template has no master.
func normalizeUnit(name string) (string, error) {
	if name == "" || len(name) > 255 {
		return "", fmt.Errorf("%w: %q (1 to 255 characters)", errUnitName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":-_.\\@", c)) {
			return "", fmt.Errorf("%w: %q (letters, digits and :-_.\\@ only)", errUnitName, name)
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		switch suffix := name[i+1:]; suffix {
		case "service":
			name = name[:i]
		case "socket", "target", "timer", "mount", "automount", "path", "scope", "slice", "swap", "device":
			return "", fmt.Errorf("%w: %q is a .%s unit; give the service (%s.service)", errUnitName, name, suffix, name[:i])
		}
	}
	if name == "" || strings.HasPrefix(name, "@") || strings.Count(name, "@") > 1 {
		return "", fmt.Errorf("%w: %q", errUnitName, name)
	}
	if strings.HasSuffix(name, "@") {
		return "", fmt.Errorf("%w: %q is a template; name an instance (%sweb)", errUnitName, name+".service", name)
	}
	return name + ".service", nil
}

// execStartFlags finds the -c FILE and --control PATH of a `baton run` command line (argv
// of ExecStart=, argv[0] the program), parsed as the flag package parses run's flags:
// "-c X", "-c=X", "--c X", "--c=X", up to the first argument that is not a flag or "--".
// Both are empty for a command line that is not `baton run`, and a value systemd would
// expand at exec time ("${X}") is not guessed at.
func execStartFlags(argv []string) (file, control string) {
	if len(argv) < 2 || argv[1] != "run" {
		return "", ""
	}
	args := argv[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !hasValue {
			// Every flag of run takes a value.
			if i+1 >= len(args) {
				break
			}
			i++
			value = args[i]
		}
		if strings.Contains(value, "$") {
			continue
		}
		switch name {
		case "c":
			file = value
		case "control":
			control = value
		}
	}
	return file, control
}

// controlCandidates are the control sockets of the unit's master to try, in order:
// $RUNTIME_DIRECTORY/control.sock of the unit (a master under systemd listens there
// whatever its config says), the --control PATH of its ExecStart=, then what the -c FILE
// of its ExecStart= names now (controlPaths). A file that cannot be read is no error as
// long as there is another place to look.
func (u *unitView) controlCandidates() ([]string, error) {
	var ps []string
	add := func(p string) {
		if p != "" && !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if len(u.RuntimeDirectory) > 0 {
		// RuntimeDirectory= is relative to /run for system services; systemd refuses
		// absolute paths and "..".
		add(filepath.Join("/run", filepath.Clean("/"+u.RuntimeDirectory[0]), "control.sock"))
	}
	add(u.control)
	var err error
	if u.Config != "" {
		var fromFile []string
		fromFile, err = controlPaths(u.Config)
		for _, p := range fromFile {
			add(p)
		}
	}
	if len(ps) == 0 {
		if err == nil {
			err = errors.New("it has no RuntimeDirectory= and its ExecStart= names no -c FILE")
		}
		return nil, fmt.Errorf("%s: no control socket to try: %w; give --socket", u.Unit, err)
	}
	return ps, nil
}

// readUnit asks systemd (its private socket as root, else the system bus) for what it
// knows of the service, within unitTimeout.
func readUnit(name string) (*unitView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	conn, err := systemdConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot ask systemd about %s: %w", name, err)
	}
	defer conn.Close()
	unit, err := conn.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("cannot ask systemd about %s: %w", name, err)
	}
	u := &unitView{Unit: name}
	u.LoadState, _ = unit["LoadState"].(string)
	u.ActiveState, _ = unit["ActiveState"].(string)
	u.SubState, _ = unit["SubState"].(string)
	if ts, ok := unit["StateChangeTimestamp"].(uint64); ok && ts > 0 {
		u.Since = time.UnixMicro(int64(ts))
	}
	if u.LoadState != "loaded" {
		return u, nil
	}
	svc, err := conn.GetUnitTypePropertiesContext(ctx, name, "Service")
	if err != nil {
		return nil, fmt.Errorf("cannot ask systemd about %s: %w", name, err)
	}
	u.fill(svc)
	return u, nil
}

// fill reads the properties of systemd's org.freedesktop.systemd1.Service interface that
// baton uses, as go-systemd returns them; a property this systemd lacks stays unknown.
func (u *unitView) fill(svc map[string]any) {
	if v, ok := svc["MainPID"].(uint32); ok {
		u.MainPID = int(v)
	}
	if v, ok := svc["NRestarts"].(uint32); ok {
		u.NRestarts = &v
	}
	if v, ok := svc["NFileDescriptorStore"].(uint32); ok {
		u.FDStore = &v
	}
	u.StatusText, _ = svc["StatusText"].(string)
	u.RuntimeDirectory, _ = svc["RuntimeDirectory"].([]string)
	if v, ok := svc["TimeoutStartUSec"].(uint64); ok && v > 0 && v < math.MaxInt64/1000 {
		u.reloadTimeout = time.Duration(v) * time.Microsecond
	}
	// ExecStart is a(sasbttttuii): path, argv, ignore errors, timestamps, pid, status.
	if cmds, ok := svc["ExecStart"].([][]any); ok {
		for _, c := range cmds {
			if len(c) < 2 {
				continue
			}
			if argv, ok := c[1].([]string); ok {
				if file, control := execStartFlags(argv); file != "" || control != "" {
					u.Config, u.control = file, control
					break
				}
			}
		}
	}
}

// unitControl is --unit for the control verbs (other: the -c or --socket given with it,
// which is usage): the service's view and the control sockets to try. A unit that systemd does not know or that is not running is an error (exit 3),
// except for status, which then still asks whether a master answers on the unit's sockets
// (one started by hand would be a disagreement worth seeing).
func unitControl(verb, name, other string) (*unitView, []string, error) {
	if other != "" {
		return nil, nil, errUnitAlone
	}
	name, err := normalizeUnit(name)
	if err != nil {
		return nil, nil, err
	}
	u, err := readUnit(name)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case u.LoadState != "loaded":
		return nil, nil, fmt.Errorf("%s: systemd says it is %s (LoadState); is the name right? (systemctl list-units 'baton*')", name, u.LoadState)
	case !u.running() && verb != "status":
		return nil, nil, fmt.Errorf("%s is %s (%s): no master runs; systemctl start %s", name, u.ActiveState, u.SubState, name)
	}
	paths, err := u.controlCandidates()
	if err != nil {
		return nil, nil, err
	}
	return u, paths, nil
}

// running: systemd has (or is starting, reloading or stopping) processes of the service.
func (u *unitView) running() bool {
	return u.ActiveState != "inactive" && u.ActiveState != "failed"
}

// mainPID is the unit's MainPID if that process runs; else 0.
func (u *unitView) mainPID() int {
	if u.MainPID <= 1 || syscall.Kill(u.MainPID, 0) == syscall.ESRCH {
		return 0
	}
	return u.MainPID
}

// disagreements are where systemd's view of the service and the status of the master that
// answered on its control socket cannot both be right, each a sentence for an operator:
//   - a master answers while systemd says the unit is not running (a master started by
//     hand on the unit's socket, or systemd lost track of it);
//   - MainPID is not the master in charge (nor, during an upgrade, the new master it
//     hands over to);
//   - systemd has been reloading for longer than it allows a reload (TimeoutStartSec=;
//     its ExecReload= or the master's READY=1 should have ended it by then).
func (u *unitView) disagreements(st *supervisor.Status, now time.Time) []string {
	if st == nil {
		return nil
	}
	var d []string
	if !u.running() {
		d = append(d, fmt.Sprintf("systemd says %s is %s (%s), yet master %d answers on its control socket: a master outside the unit?", u.Unit, u.ActiveState, u.SubState, st.PID))
		return d
	}
	switch {
	case u.MainPID == 0:
		d = append(d, fmt.Sprintf("systemd knows no main process of %s, yet master %d answers", u.Unit, st.PID))
	case u.MainPID != st.PID && !(st.Upgrade != nil && u.MainPID == st.Upgrade.NewPID):
		who := "the master in charge"
		if !st.Main {
			who = "the master that answered (a new master, not committed)"
		}
		d = append(d, fmt.Sprintf("systemd's MainPID is %d, but %s is %d", u.MainPID, who, st.PID))
	}
	if u.ActiveState == "reloading" && u.reloadTimeout > 0 && !u.Since.IsZero() {
		if took := now.Sub(u.Since); took > u.reloadTimeout {
			what := "the master has no reload in flight"
			if st.Reload != nil {
				what = fmt.Sprintf("the master's reload has %d/%d new workers ready", st.Reload.Ready, st.Reload.Wanted)
			}
			d = append(d, fmt.Sprintf("systemd has been reloading %s for %s, longer than its TimeoutStartSec=%s; %s",
				u.Unit, took.Round(time.Second), u.reloadTimeout, what))
		}
	}
	return d
}

// withUnit is the reply as `--json` prints it: with --unit, systemd's view under
// "systemd" next to the master's fields.
func withUnit(reply supervisor.ControlReply, u *unitView) any {
	if u == nil {
		return reply
	}
	u.Disagreements = u.disagreements(reply.Status, time.Now())
	return struct {
		supervisor.ControlReply
		Systemd *unitView `json:"systemd"`
	}{reply, u}
}

// printUnit appends systemd's view to `baton status` (st nil: no master answered), then
// every disagreement, each on a line of its own.
func printUnit(w io.Writer, u *unitView, st *supervisor.Status) {
	if u == nil {
		return
	}
	unknown := func(p *uint32) string {
		if p == nil {
			return "unknown"
		}
		return fmt.Sprint(*p)
	}
	fmt.Fprintf(w, "systemd %s %s (%s), MainPID %d, restarts %s, FD store %s\n",
		u.Unit, u.ActiveState, u.SubState, u.MainPID, unknown(u.NRestarts), unknown(u.FDStore))
	if u.StatusText != "" {
		fmt.Fprintf(w, "  status     %s\n", u.StatusText)
	}
	for _, d := range u.disagreements(st, time.Now()) {
		fmt.Fprintf(w, "  DISAGREES  %s\n", d)
	}
}

// jsonUnit is `--json` output of a reply, with --unit systemd's view beside it.
func jsonUnit(reply supervisor.ControlReply, u *unitView) string {
	b, _ := json.MarshalIndent(withUnit(reply, u), "", "  ")
	return string(b)
}

// unitUsage reports what went wrong with --unit: usage (a bad name, or --unit with -c or
// --socket) is exit status 2; a unit systemd does not know or that is not running, or a
// systemd that does not answer, is no master to talk to (3).
func unitUsage(verb string, err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "baton %s: %v\n", verb, err)
	if errors.Is(err, errUnitName) || errors.Is(err, errUnitAlone) {
		return 2
	}
	return 3
}
