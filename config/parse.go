package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/pelletier/go-toml/v2/unstable"
)

// MaxFileSize is the size of the largest file Load reads: 1 MiB. Real
// configurations are a few KiB (default.toml is 4). The limit bounds what a
// file can make a reload cost: 1 MiB of the costliest TOML (an array of a
// quarter of a million floats, or half a million one-digit integers) takes
// Parse under a second of CPU and about 150 MB.
const MaxFileSize = 1 << 20

// Load reads the TOML file at path and parses it with Parse. A file that
// cannot be read gives an *Error that wraps the *fs.PathError, so
// errors.Is(err, fs.ErrNotExist) works. A file larger than MaxFileSize
// gives "FILE: too large (N bytes, limit 1048576)"; Load reads none of it
// (of a pipe or a device, which have no size, no more than the limit).
func Load(path string) (*Config, error) {
	abs := absPath(path)
	data, size, err := readFile(path)
	switch {
	case err != nil:
		msg := err.Error()
		if pe, ok := err.(*os.PathError); ok {
			msg = pe.Op + ": " + pe.Err.Error()
		}
		return nil, &Error{File: abs, Msg: msg, err: err}
	case size < 0:
		return nil, &Error{File: abs, Msg: fmt.Sprintf("too large (more than %d bytes, limit %d)", MaxFileSize, MaxFileSize)}
	case size > MaxFileSize:
		return nil, &Error{File: abs, Msg: fmt.Sprintf("too large (%d bytes, limit %d)", size, MaxFileSize)}
	}
	return Parse(path, data)
}

// readFile returns the contents of the file at path and their size, or only
// the size when it is over MaxFileSize: -1 when the file is not a regular
// one (a pipe, /dev/zero) and so gave more bytes than that.
func readFile(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, fi.Size(), nil
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > MaxFileSize {
		return nil, -1, nil
	}
	return data, int64(len(data)), nil
}

// Parse reads a configuration from data, TOML that came from the file path
// (used in errors, and as the base of relative paths; "" means the current
// directory). It starts from Default, so missing keys keep their defaults.
//
// Parse reports every problem it finds, each an *Error with the file, the
// line and the key: TOML syntax, unknown keys, values of the wrong type, and
// everything Validate checks except that worker.command is set, because a
// command given on the command line may complete the file. Call Validate
// after Overrides.Apply, or after Parse for `baton check`.
//
// Time and memory grow in proportion to len(data) (sorting worker.env adds
// a log factor). Parse does not limit len(data); Load does.
//
// On error Parse returns a nil *Config.
func Parse(path string, data []byte) (*Config, error) {
	abs := absPath(path)
	root, serr := buildTree(abs, data)
	if serr != nil {
		return nil, serr
	}
	c := Default()
	c.Path = abs
	c.lines = map[string]int{}
	d := &decoder{c: c, base: baseDir(abs), bad: map[string]bool{}}
	d.root(root)
	// Validate what did decode, but stay quiet about keys already reported:
	// a listener name of the wrong type is not also "required".
	errs := d.errs
	for _, e := range c.validate(false) {
		if !d.bad[e.Key] {
			errs.add(e)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func absPath(path string) string {
	if path == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// baseDir is the directory relative paths in the file are relative to.
func baseDir(abs string) string {
	if abs != "" {
		return filepath.Dir(abs)
	}
	if wd, err := os.Getwd(); err == nil {
		return wd
	}
	return "/"
}

// decoder fills a Config from a tree, recording the line of every key.
type decoder struct {
	c    *Config
	base string
	errs errorList
	bad  map[string]bool // keys reported already
}

func (d *decoder) errorf(key string, line int, format string, args ...any) {
	d.bad[key] = true
	d.errs.add(&Error{File: d.c.Path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) root(t *node) {
	for _, k := range t.keys {
		v := t.fields[k]
		key := keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "pidfile":
			if s, ok := d.str(key, v); ok && s != "" {
				d.c.PIDFile = d.path(s)
			}
		case "control_socket":
			if s, ok := d.str(key, v); ok && s != "" {
				d.c.ControlSocket = s
				if !isAbstract(s) {
					d.c.ControlSocket = d.path(s)
				}
			}
		case "listen":
			d.listeners(key, v)
		case "worker":
			if d.table(key, v, "[worker]") {
				d.worker(v)
			}
		case "upgrade":
			if d.table(key, v, "[upgrade]") {
				d.upgrade(v)
			}
		case "reload":
			if d.table(key, v, "[reload]") {
				d.reload(v)
			}
		case "health":
			if d.table(key, v, "[health]") {
				d.health(v)
			}
		case "rollout":
			if d.table(key, v, "[rollout]") {
				d.rollout(v)
			}
		case "metrics":
			if d.table(key, v, "[metrics]") {
				d.metrics(v)
			}
		default:
			d.unknownTop(key, v.line, k)
		}
	}
}

func (d *decoder) listeners(key string, v *node) {
	if v.kind != unstable.ArrayTable && v.kind != unstable.Array {
		d.errorf(key, v.line, "must be an array of tables, written [[listen]] (got %s)", v.kindName())
		return
	}
	for i, t := range v.items {
		ikey := fmt.Sprintf("listen[%d]", i)
		if t.kind != unstable.Table {
			d.errorf(ikey, t.line, "must be a table (got %s)", t.kindName())
			continue
		}
		d.c.Listeners = append(d.c.Listeners, d.listener(i, ikey, t))
	}
}

func (d *decoder) listener(i int, prefix string, t *node) Listener {
	l := Listener{src: &source{index: i, line: t.line, lines: map[string]int{}}}
	var network string
	for _, k := range t.keys {
		v := t.fields[k]
		key := prefix + "." + keyString([]string{k})
		l.src.lines[k] = v.line
		switch k {
		case "name":
			l.Name, _ = d.str(key, v)
		case "network":
			network, _ = d.str(key, v)
		case "address":
			l.Address, _ = d.str(key, v)
		case "mode":
			l.Mode = d.mode(key, v)
		case "owner":
			l.Owner, _ = d.str(key, v)
		case "group":
			l.Group, _ = d.str(key, v)
		case "backlog":
			l.Backlog, _ = d.integer(key, v)
		default:
			d.unknown(key, v.line, k, listenKeys)
		}
	}
	n, addr, err := splitAddress(network, l.Address)
	if err != nil {
		line := l.src.lines["address"]
		d.errorf(prefix+".address", line, "%v", err)
	}
	l.Network, l.Address = n, addr
	return l
}

func (d *decoder) worker(t *node) {
	w := &d.c.Worker
	for _, k := range t.keys {
		v := t.fields[k]
		key := "worker." + keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "command":
			if s, ok := d.strings(key, v); ok {
				w.Command = s
			}
		case "count":
			if n, ok := d.integer(key, v); ok {
				w.Count = n
			}
		case "env":
			if d.table(key, v, "a table such as {NAME = \"value\"}") {
				w.Env = d.env(key, v)
			}
		case "dir":
			if s, ok := d.str(key, v); ok && s != "" {
				w.Dir = d.path(s)
			}
		case "user":
			w.User, _ = d.str(key, v)
		case "group":
			w.Group, _ = d.str(key, v)
		case "ready":
			if s, ok := d.str(key, v); ok {
				w.Ready = s
			}
		case "start_timeout":
			d.duration(key, v, &w.StartTimeout)
		case "stop_signal":
			if s, ok := d.str(key, v); ok {
				sig, err := parseSignal(s)
				if err != nil {
					d.errorf(key, v.line, "%v", err)
				} else {
					w.StopSignal = sig
				}
			}
		case "stop_timeout":
			d.duration(key, v, &w.StopTimeout)
		case "watchdog":
			d.duration(key, v, &w.Watchdog)
		case "stop_spread":
			d.duration(key, v, &w.StopSpread)
		case "restart_delay":
			d.duration(key, v, &w.RestartDelay)
		case "restart_delay_max":
			d.duration(key, v, &w.RestartDelayMax)
		case "log_identifier":
			if s, ok := d.str(key, v); ok {
				w.LogIdentifier = s
				if s == "" {
					d.errorf(key, v.line, "must not be empty (leave the key out for the program's name)")
				}
			}
		default:
			d.unknown(key, v.line, k, workerKeys)
		}
	}
}

func (d *decoder) upgrade(t *node) {
	u := &d.c.Upgrade
	for _, k := range t.keys {
		v := t.fields[k]
		key := "upgrade." + keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "commit":
			if s, ok := d.str(key, v); ok {
				u.Commit = s
			}
		case "soak":
			d.duration(key, v, &u.Soak)
		case "timeout":
			d.duration(key, v, &u.Timeout)
		default:
			d.unknown(key, v.line, k, upgradeKeys)
		}
	}
}

func (d *decoder) reload(t *node) {
	r := &d.c.Reload
	for _, k := range t.keys {
		v := t.fields[k]
		key := "reload." + keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "soak":
			d.duration(key, v, &r.Soak)
		default:
			d.unknown(key, v.line, k, reloadKeys)
		}
	}
}

func (d *decoder) health(t *node) {
	h := &d.c.Health
	for _, k := range t.keys {
		v := t.fields[k]
		key := "health." + keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "check":
			if s, ok := d.strings(key, v); ok {
				h.Check = s
			}
		case "check_interval":
			d.duration(key, v, &h.CheckInterval)
		case "check_timeout":
			d.duration(key, v, &h.CheckTimeout)
		case "check_failures":
			if n, ok := d.integer(key, v); ok {
				h.CheckFailures = n
			}
		default:
			d.unknown(key, v.line, k, healthKeys)
		}
	}
}

func (d *decoder) rollout(t *node) {
	r := &d.c.Rollout
	for _, k := range t.keys {
		v := t.fields[k]
		key := "rollout." + keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "strategy":
			if s, ok := d.str(key, v); ok {
				r.Strategy = s
			}
		case "surge":
			if n, ok := d.integer(key, v); ok {
				r.Surge = n
			}
		case "canary":
			if n, ok := d.integer(key, v); ok {
				r.Canary = n
			}
		default:
			d.unknown(key, v.line, k, rolloutKeys)
		}
	}
}

func (d *decoder) metrics(t *node) {
	m := &d.c.Metrics
	for _, k := range t.keys {
		v := t.fields[k]
		key := "metrics." + keyString([]string{k})
		d.c.lines[key] = v.line
		switch k {
		case "address":
			if s, ok := d.str(key, v); ok {
				m.Network, m.Address = metricsAddress(s)
				if m.Network == "unix" && !isAbstract(m.Address) && m.Address != "" {
					m.Address = d.path(m.Address)
				}
			}
		case "path":
			if s, ok := d.str(key, v); ok {
				m.Path = s
			}
		default:
			d.unknown(key, v.line, k, metricsKeys)
		}
	}
}

// env turns {K = "V", …} into "K=V" strings sorted by K.
func (d *decoder) env(key string, t *node) []string {
	names := append([]string(nil), t.keys...)
	sort.Strings(names)
	var env []string // nil for {}, as when the key is absent
	if len(names) > 0 {
		env = make([]string, 0, len(names))
	}
	for _, k := range names {
		v := t.fields[k]
		ekey := key + "." + keyString([]string{k})
		d.c.lines[ekey] = v.line
		if s, ok := d.str(ekey, v); ok {
			env = append(env, k+"="+s)
		}
	}
	return env
}

// path makes p absolute relative to the config file's directory.
func (d *decoder) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.base, p)
}
