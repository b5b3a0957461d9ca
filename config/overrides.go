package config

import (
	"fmt"
	"path/filepath"
)

// Flag names used in errors about values that came from Overrides.
const (
	flagWorkers = "--workers"
	flagPIDFile = "--pidfile"
	flagControl = "--control"
	flagCommand = "command after --"
	flagReady   = "--ready"
	flagCommit  = "--commit"
)

// Overrides are the command-line flags of `baton run` that override the
// file: `baton run --listen http=127.0.0.1:8080 --workers 2 --pidfile PATH
// --control PATH -- CMD ARGS…`. Zero fields leave the config as it is.
type Overrides struct {
	Listen  []string // --listen "name=address", repeatable; see ParseListen
	Workers int      // --workers; 0 keeps worker.count
	PIDFile string   // --pidfile; relative to the current directory
	Control string   // --control: the control socket; relative to the current directory, "@name" abstract
	Command []string // the command after --; replaces worker.command
	Ready   string   // --ready: "notify" | "started"
	Commit  string   // --commit: "auto" | "manual"
}

// Apply lays o over c. A --listen whose name is already in c replaces that
// listener; others are appended in order. Apply reports a --listen that
// does not parse, or a name given twice on the command line, as
// `--listen "http=bad": …`, and then leaves c unchanged. Range checks
// (--workers 0…) are left to Validate, which then names the flag. c must
// not be nil.
func (o Overrides) Apply(c *Config) error {
	var errs errorList
	var added []Listener
	byName := map[string]string{}
	for _, s := range o.Listen {
		flag := fmt.Sprintf("--listen %q", s)
		l, err := parseListen(s)
		if err != nil {
			errs.add(&Error{Key: flag, Msg: err.Error()})
			continue
		}
		if prev, dup := byName[l.Name]; dup {
			errs.add(&Error{Key: flag, Msg: fmt.Sprintf("name %q already given by --listen %q", l.Name, prev)})
			continue
		}
		byName[l.Name] = s
		l.src = &source{flag: flag}
		added = append(added, l)
	}
	pidfile := o.PIDFile
	if pidfile != "" {
		abs, err := filepath.Abs(pidfile)
		if err != nil {
			errs.add(&Error{Key: flagPIDFile, Msg: err.Error()})
		}
		pidfile = abs
	}
	control := o.Control
	if control != "" && !isAbstract(control) {
		abs, err := filepath.Abs(control)
		if err != nil {
			errs.add(&Error{Key: flagControl, Msg: err.Error()})
		}
		control = abs
	}
	if err := errs.err(); err != nil {
		return err
	}

	for _, l := range added {
		replaced := false
		for i := range c.Listeners {
			if c.Listeners[i].Name == l.Name {
				c.Listeners[i] = l
				replaced = true
				break
			}
		}
		if !replaced {
			c.Listeners = append(c.Listeners, l)
		}
	}
	if o.Workers != 0 {
		c.Worker.Count = o.Workers
		c.setFlag("worker.count", flagWorkers)
	}
	if pidfile != "" {
		c.PIDFile = pidfile
		c.setFlag("pidfile", flagPIDFile)
	}
	if control != "" {
		c.ControlSocket = control
		c.setFlag("control_socket", flagControl)
	}
	if len(o.Command) > 0 {
		c.Worker.Command = append([]string(nil), o.Command...)
		c.setFlag("worker.command", flagCommand)
	}
	if o.Ready != "" {
		c.Worker.Ready = o.Ready
		c.setFlag("worker.ready", flagReady)
	}
	if o.Commit != "" {
		c.Upgrade.Commit = o.Commit
		c.setFlag("upgrade.commit", flagCommit)
	}
	return nil
}

func (c *Config) setFlag(key, flag string) {
	if c.flags == nil {
		c.flags = map[string]string{}
	}
	c.flags[key] = flag
}
