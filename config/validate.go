package config

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// reservedEnv are the variables baton sets for each worker itself.
var reservedEnv = []string{"LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "BATON_STOP_TIMEOUT"}

// Validate checks the configuration as a whole: worker.command is set,
// listener names are unique, mode/owner/group only on unix sockets, every
// value in range. It returns nil, one *Error, or several joined (see
// Errors), sorted by line. Each *Error names the file and line of the
// offending key when the value came from the file, or the flag when it came
// from Overrides.Apply. Validate does not change c and looks nothing up on
// the system (users, groups and paths are checked when workers start).
func (c *Config) Validate() error {
	return c.validate(true).err()
}

// checker collects the problems of one Config.
type checker struct {
	c    *Config
	errs errorList
}

// errorf reports a problem with a config-level key such as "worker.count".
func (k *checker) errorf(key, format string, args ...any) {
	e := k.c.locate(key)
	e.Msg = fmt.Sprintf(format, args...)
	k.errs.add(e)
}

// locate says where key came from: the flag that set it, else the line of
// the key or, for a key missing from the file, of its table.
func (c *Config) locate(key string) *Error {
	for k := key; ; {
		if f, ok := c.flags[k]; ok {
			return &Error{Key: f}
		}
		if line, ok := c.lines[k]; ok {
			return &Error{File: c.Path, Line: line, Key: key}
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			return &Error{File: c.Path, Key: key}
		}
		k = k[:i]
	}
}

// listenerf reports a problem with key short ("mode") of c.Listeners[i].
func (k *checker) listenerf(i int, short, format string, args ...any) {
	e := k.c.locateListener(i, short)
	e.Msg = fmt.Sprintf(format, args...)
	k.errs.add(e)
}

func (c *Config) locateListener(i int, short string) *Error {
	src := c.Listeners[i].src
	switch {
	case src == nil:
		return &Error{Key: fmt.Sprintf("listen[%d].%s", i, short)}
	case src.flag != "":
		return &Error{Key: src.flag}
	}
	line, ok := src.lines[short]
	if !ok {
		line = src.line
	}
	return &Error{File: c.Path, Line: line, Key: fmt.Sprintf("listen[%d].%s", src.index, short)}
}

// describeListener names c.Listeners[i] for a message about another one.
func (c *Config) describeListener(i int) string {
	e := c.locateListener(i, "name")
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d)", strings.TrimSuffix(e.Key, ".name"), e.Line)
	}
	return strings.TrimSuffix(e.Key, ".name")
}

// validate returns every problem with c; requireCommand false skips the
// check that worker.command is set.
func (c *Config) validate(requireCommand bool) errorList {
	k := &checker{c: c}
	if c.PIDFile != "" {
		if err := checkFilePath(c.PIDFile); err != nil {
			k.errorf("pidfile", "%v", err)
		}
	}
	if c.ControlSocket != "" {
		if err := checkUnixAddress(c.ControlSocket); err != nil {
			k.errorf("control_socket", "%v", err)
		}
	}
	k.listeners()
	k.worker(requireCommand)
	k.upgrade()
	k.reload()
	k.health()
	k.rollout()
	k.metrics()
	return k.errs
}

func (k *checker) listeners() {
	seen := map[string]int{}
	for i, l := range k.c.Listeners {
		if l.Name == "" {
			k.listenerf(i, "name", "required")
		} else if err := checkName(l.Name); err != nil {
			k.listenerf(i, "name", "%v", err)
		} else if j, dup := seen[l.Name]; dup {
			k.listenerf(i, "name", "duplicate name %q, also used by %s", l.Name, k.c.describeListener(j))
		} else {
			seen[l.Name] = i
		}

		switch {
		case !contains(networks, l.Network):
			k.listenerf(i, "network", "must be one of %s (got %q)", strings.Join(networks, ", "), l.Network)
		case l.Address == "":
			k.listenerf(i, "address", "required")
		default:
			if err := checkAddress(l.Network, l.Address); err != nil {
				k.listenerf(i, "address", "%v", err)
			}
		}

		unix := l.Network == "unix"
		if l.Mode != 0 && !unix {
			k.listenerf(i, "mode", "only for unix sockets (network is %q)", l.Network)
		} else if l.Mode&^maxSocketMode != 0 {
			k.listenerf(i, "mode", "must be at most 0777 (got %#o)", uint32(l.Mode))
		}
		for _, id := range []struct{ key, val string }{{"owner", l.Owner}, {"group", l.Group}} {
			if id.val == "" {
				continue
			}
			if !unix {
				k.listenerf(i, id.key, "only for unix sockets (network is %q)", l.Network)
			} else if err := checkID(id.val); err != nil {
				k.listenerf(i, id.key, "%v", err)
			}
		}

		switch {
		case l.Backlog < 0 || l.Backlog > MaxBacklog:
			k.listenerf(i, "backlog", "must be from 0 to %d (got %d)", MaxBacklog, l.Backlog)
		case l.Backlog != 0 && strings.HasPrefix(l.Network, "udp"):
			k.listenerf(i, "backlog", "only for stream sockets (network is %q)", l.Network)
		}
	}
}

func (k *checker) worker(requireCommand bool) {
	w := &k.c.Worker
	switch {
	case len(w.Command) == 0:
		if requireCommand {
			k.errorf("worker.command", "required: set command = [\"/path/to/server\", …] under [worker], or give the command after --")
		}
	case w.Command[0] == "":
		k.errorf("worker.command", "the program (first element) is empty")
	}
	for i, arg := range w.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			k.errorf("worker.command", "element %d contains a NUL byte", i)
		}
	}
	if w.Count < 1 || w.Count > MaxWorkers {
		k.errorf("worker.count", "must be from 1 to %d (got %d)", MaxWorkers, w.Count)
	}
	k.env()
	if w.Dir != "" {
		if err := checkDirPath(w.Dir); err != nil {
			k.errorf("worker.dir", "%v", err)
		}
	}
	for _, id := range []struct{ key, val string }{{"worker.user", w.User}, {"worker.group", w.Group}} {
		if id.val != "" {
			if err := checkID(id.val); err != nil {
				k.errorf(id.key, "%v", err)
			}
		}
	}
	if w.Ready != ReadyNotify && w.Ready != ReadyStarted {
		k.errorf("worker.ready", "must be %q or %q (got %q)", ReadyNotify, ReadyStarted, w.Ready)
	}
	k.positive("worker.start_timeout", w.StartTimeout)
	if signalName(w.StopSignal) == "" {
		k.errorf("worker.stop_signal", "must be one of %s (got signal %d)", signalNames(), int(w.StopSignal))
	}
	k.positive("worker.stop_timeout", w.StopTimeout)
	if w.Watchdog != 0 && (w.Watchdog < MinWatchdog || w.Watchdog > MaxWatchdog) {
		k.errorf("worker.watchdog", "must be \"0s\" (off) or between %s and %s (got %s)", MinWatchdog, MaxWatchdog, w.Watchdog)
	}
	if w.StopSpread < 0 {
		k.errorf("worker.stop_spread", "must not be negative (got %s)", w.StopSpread)
	}
	k.positive("worker.restart_delay", w.RestartDelay)
	if w.LogIdentifier != "" {
		if err := checkLogIdentifier(w.LogIdentifier); err != nil {
			k.errorf("worker.log_identifier", "%v", err)
		}
	}
	if k.positive("worker.restart_delay_max", w.RestartDelayMax) && w.RestartDelay > 0 && w.RestartDelayMax < w.RestartDelay {
		k.errorf("worker.restart_delay_max", "must be at least restart_delay (%s) (got %s)", w.RestartDelay, w.RestartDelayMax)
	}
}

func (k *checker) env() {
	seen := make(map[string]bool, len(k.c.Worker.Env))
	for _, kv := range k.c.Worker.Env {
		name, val, ok := strings.Cut(kv, "=")
		key := "worker.env." + keyString([]string{name})
		switch {
		case !ok:
			k.errorf("worker.env", "entry %q is not NAME=value", kv)
		case !validEnvName(name):
			k.errorf(key, "variable name must be letters, digits and _, not starting with a digit (got %q)", name)
		case contains(reservedEnv, name):
			if name == "BATON_STOP_TIMEOUT" {
				k.errorf(key, "baton sets %s for each worker itself (from stop_timeout)", name)
				break
			}
			k.errorf(key, "baton sets %s for each worker itself", name)
		case seen[name]:
			k.errorf(key, "set twice")
		case strings.IndexByte(val, 0) >= 0:
			k.errorf(key, "value contains a NUL byte")
		}
		seen[name] = true
	}
}

func (k *checker) upgrade() {
	u := &k.c.Upgrade
	if u.Commit != CommitAuto && u.Commit != CommitManual {
		k.errorf("upgrade.commit", "must be %q or %q (got %q)", CommitAuto, CommitManual, u.Commit)
	}
	if u.Soak < 0 {
		k.errorf("upgrade.soak", "must not be negative (got %s)", u.Soak)
	}
	k.positive("upgrade.timeout", u.Timeout)
}

// MaxCheckFailures is the highest health.check_failures.
const MaxCheckFailures = 100

func (k *checker) reload() {
	if k.c.Reload.Soak < 0 {
		k.errorf("reload.soak", "must not be negative (got %s)", k.c.Reload.Soak)
	}
}

func (k *checker) health() {
	h := &k.c.Health
	if len(h.Check) > 0 {
		if h.Check[0] == "" {
			k.errorf("health.check", "the program (first element) is empty")
		}
		for i, arg := range h.Check {
			if strings.IndexByte(arg, 0) >= 0 {
				k.errorf("health.check", "element %d contains a NUL byte", i)
			}
		}
	}
	k.positive("health.check_interval", h.CheckInterval)
	k.positive("health.check_timeout", h.CheckTimeout)
	if h.CheckFailures < 1 || h.CheckFailures > MaxCheckFailures {
		k.errorf("health.check_failures", "must be from 1 to %d (got %d)", MaxCheckFailures, h.CheckFailures)
	}
}

func (k *checker) rollout() {
	r, n := &k.c.Rollout, k.c.Worker.Count
	if r.Strategy != StrategyAll && r.Strategy != StrategyRolling {
		k.errorf("rollout.strategy", "must be %q or %q (got %q)", StrategyAll, StrategyRolling, r.Strategy)
	}
	if r.Surge < 1 || r.Surge > MaxWorkers {
		k.errorf("rollout.surge", "must be from 1 to %d (got %d)", MaxWorkers, r.Surge)
	}
	if r.Canary < 0 || r.Canary > MaxWorkers {
		k.errorf("rollout.canary", "must be from 0 to %d (got %d)", MaxWorkers, r.Canary)
	} else if r.Canary > 0 && n > 0 && r.Canary >= n {
		k.errorf("rollout.canary", "must be less than worker.count (%d): the canary is the first part of the new workers (got %d)", n, r.Canary)
	}
	if r.Strategy == StrategyAll && r.Canary > 0 {
		k.errorf("rollout.canary", "needs strategy = %q", StrategyRolling)
	}
}

func (k *checker) metrics() {
	m := &k.c.Metrics
	if m.Address != "" {
		if err := checkMetricsAddress(m.Network, m.Address); err != nil {
			k.errorf("metrics.address", "%v", err)
		}
	}
	if err := checkMetricsPath(m.Path); m.Path != "" && err != nil {
		k.errorf("metrics.path", "%v", err)
	}
}

// positive reports d unless it is greater than zero.
func (k *checker) positive(key string, d time.Duration) bool {
	if d <= 0 {
		k.errorf(key, "must be greater than 0 (got %s)", d)
		return false
	}
	return true
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkID checks the syntax of a user or group: a numeric id, or a name
// that starts with a letter or _ and goes on with letters, digits, _ . -
// (and may end in $, as Samba machine accounts do).
func checkID(s string) error {
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == math.MaxUint32 {
			return fmt.Errorf("must be a name or a numeric id below 4294967295 (got %q)", s)
		}
		return nil
	}
	name := strings.TrimSuffix(s, "$")
	ok := name != "" && len(name) <= 256 && (name[0] == '_' || name[0] >= 'A' && name[0] <= 'Z' || name[0] >= 'a' && name[0] <= 'z')
	for i := 1; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	if !ok {
		return fmt.Errorf("must be a name (letters, digits, _ . -, starting with a letter or _) or a numeric id (got %q)", s)
	}
	return nil
}

func checkDirPath(p string) error {
	switch {
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("contains a NUL byte (got %q)", p)
	case !filepath.IsAbs(p):
		return fmt.Errorf("must be an absolute path (got %q)", p)
	}
	return nil
}

func checkFilePath(p string) error {
	if err := checkDirPath(p); err != nil {
		return err
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("must name a file, not a directory (got %q)", p)
	}
	return nil
}
