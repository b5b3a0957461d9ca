package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Encode writes c as TOML that Parse reads back to an equal Config (apart
// from Path and the remembered positions). Every key is written, defaults
// included, except empty optional ones. Encode fails on a string that is
// not UTF-8 (TOML cannot hold it), an env entry that is not NAME=value and
// a stop signal with no name; call Validate first for everything else.
func (c *Config) Encode() ([]byte, error) {
	e := &encoder{}
	if c.PIDFile != "" {
		e.str("pidfile", c.PIDFile)
	}
	if c.ControlSocket != "" {
		e.str("control_socket", c.ControlSocket)
	}
	for _, l := range c.Listeners {
		e.line("")
		e.line("[[listen]]")
		e.str("name", l.Name)
		e.str("network", l.Network)
		addr := l.Address
		if _, _, ok := networkPrefix(addr); ok {
			// "udp:80" is host udp, port 80 for network tcp: keep it from
			// being read back as a prefix.
			addr = l.Network + ":" + addr
		}
		e.str("address", addr)
		if l.Mode != 0 {
			e.str("mode", fmt.Sprintf("%04o", uint32(l.Mode)))
		}
		if l.Owner != "" {
			e.str("owner", l.Owner)
		}
		if l.Group != "" {
			e.str("group", l.Group)
		}
		if l.Backlog != 0 {
			e.line("backlog = " + strconv.Itoa(l.Backlog))
		}
	}

	w := &c.Worker
	e.line("")
	e.line("[worker]")
	if len(w.Command) > 0 {
		quoted := make([]string, len(w.Command))
		for i, arg := range w.Command {
			quoted[i] = e.quote(arg)
		}
		e.line("command = [" + strings.Join(quoted, ", ") + "]")
	}
	e.line("count = " + strconv.Itoa(w.Count))
	if len(w.Env) > 0 {
		pairs := make([]string, len(w.Env))
		for i, kv := range w.Env {
			name, val, ok := strings.Cut(kv, "=")
			if !ok {
				e.fail(fmt.Errorf("config: encode: env entry %q is not NAME=value", kv))
			}
			pairs[i] = keyString([]string{name}) + " = " + e.quote(val)
		}
		e.line("env = { " + strings.Join(pairs, ", ") + " }")
	}
	if w.Dir != "" {
		e.str("dir", w.Dir)
	}
	if w.User != "" {
		e.str("user", w.User)
	}
	if w.Group != "" {
		e.str("group", w.Group)
	}
	e.str("ready", w.Ready)
	e.duration("start_timeout", w.StartTimeout)
	sig := signalName(w.StopSignal)
	if sig == "" {
		e.fail(fmt.Errorf("config: encode: stop signal %d has no name", int(w.StopSignal)))
	}
	e.str("stop_signal", sig)
	e.duration("stop_timeout", w.StopTimeout)
	e.duration("watchdog", w.Watchdog)
	e.duration("stop_spread", w.StopSpread)
	e.duration("restart_delay", w.RestartDelay)
	e.duration("restart_delay_max", w.RestartDelayMax)
	if w.LogIdentifier != "" {
		e.str("log_identifier", w.LogIdentifier)
	}

	e.line("")
	e.line("[upgrade]")
	e.str("commit", c.Upgrade.Commit)
	e.duration("soak", c.Upgrade.Soak)
	e.duration("timeout", c.Upgrade.Timeout)

	if c.Reload.Soak != 0 {
		e.line("")
		e.line("[reload]")
		e.duration("soak", c.Reload.Soak)
	}

	if r, d := c.Rollout, Default().Rollout; r != d {
		e.line("")
		e.line("[rollout]")
		e.str("strategy", r.Strategy)
		e.line("surge = " + strconv.Itoa(r.Surge))
		e.line("canary = " + strconv.Itoa(r.Canary))
	}

	if h, d := c.Health, Default().Health; h.On() || h.CheckInterval != d.CheckInterval || h.CheckTimeout != d.CheckTimeout || h.CheckFailures != d.CheckFailures {
		e.line("")
		e.line("[health]")
		if h.On() {
			quoted := make([]string, len(h.Check))
			for i, arg := range h.Check {
				quoted[i] = e.quote(arg)
			}
			e.line("check = [" + strings.Join(quoted, ", ") + "]")
		}
		e.duration("check_interval", h.CheckInterval)
		e.duration("check_timeout", h.CheckTimeout)
		e.line("check_failures = " + strconv.Itoa(h.CheckFailures))
	}

	if m := c.Metrics; m.Address != "" || m.Path != "" {
		e.line("")
		e.line("[metrics]")
		if m.Address != "" {
			addr := m.Address
			if m.Network == "unix" {
				addr = "unix:" + addr
			}
			e.str("address", addr)
		}
		if m.Path != "" {
			e.str("path", m.Path)
		}
	}

	if e.err != nil {
		return nil, e.err
	}
	return bytes.TrimLeft(e.buf.Bytes(), "\n"), nil
}

// encoder writes TOML lines and keeps the first error.
type encoder struct {
	buf bytes.Buffer
	err error
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) line(s string) {
	e.buf.WriteString(s)
	e.buf.WriteByte('\n')
}

func (e *encoder) str(key, val string) {
	e.line(key + " = " + e.quote(val))
}

func (e *encoder) duration(key string, d time.Duration) {
	e.str(key, d.String())
}

func (e *encoder) quote(s string) string {
	if !utf8.ValidString(s) {
		e.fail(fmt.Errorf("config: encode: %q is not valid UTF-8", s))
	}
	return quote(s)
}

// quote writes s as a TOML basic string: only ", \ and control characters
// are escaped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
