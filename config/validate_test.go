package config

import (
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "/etc/baton/web.toml", Line: 12, Key: "worker.count", Msg: "must be from 1 to 1024 (got 0)"},
			"/etc/baton/web.toml:12: worker.count: must be from 1 to 1024 (got 0)"},
		{Error{File: "/etc/baton/web.toml", Key: "worker.command", Msg: "required"},
			"/etc/baton/web.toml: worker.command: required"},
		{Error{File: "/etc/baton/web.toml", Msg: "open: permission denied"},
			"/etc/baton/web.toml: open: permission denied"},
		{Error{Key: `--listen "http=bad"`, Msg: "bad"}, `--listen "http=bad": bad`},
		{Error{Line: 3, Key: "pidfile", Msg: "m"}, "line 3: pidfile: m"},
		{Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestValidateKeepsLines changes a parsed Config the way a caller could and
// checks that Validate still points at the file's lines.
func TestValidateKeepsLines(t *testing.T) {
	const file = `pidfile = "/run/web.pid"

[[listen]]
name = "http"
address = ":8080"

[worker]
count = 2
env = { A = "1" }
`
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no command", func(c *Config) {},
			testPath + ":7: worker.command: required: set command = [\"/path/to/server\", …] under [worker], or give the command after --"},
		{"count", func(c *Config) { c.Worker.Command = []string{"x"}; c.Worker.Count = 0 },
			testPath + ":8: worker.count: must be from 1 to 1024 (got 0)"},
		{"listener mode", func(c *Config) { c.Worker.Command = []string{"x"}; c.Listeners[0].Mode = 0o600 },
			testPath + ":3: listen[0].mode: only for unix sockets (network is \"tcp\")"},
		{"listener address", func(c *Config) { c.Worker.Command = []string{"x"}; c.Listeners[0].Address = "nope" },
			testPath + ":5: listen[0].address: address must be host:port, such as 127.0.0.1:8080 or [::1]:8080 (missing port in address in \"nope\")"},
		{"env", func(c *Config) { c.Worker.Command = []string{"x"}; c.Worker.Env = append(c.Worker.Env, "A=2") },
			testPath + ":9: worker.env.A: set twice"},
		{"env entry", func(c *Config) { c.Worker.Command = []string{"x"}; c.Worker.Env = []string{"A"} },
			testPath + ":9: worker.env: entry \"A\" is not NAME=value"},
		{"pidfile", func(c *Config) { c.Worker.Command = []string{"x"}; c.PIDFile = "rel.pid" },
			testPath + ":1: pidfile: must be an absolute path (got \"rel.pid\")"},
		{"signal", func(c *Config) { c.Worker.Command = []string{"x"}; c.Worker.StopSignal = syscall.SIGSEGV },
			testPath + ":7: worker.stop_signal: must be one of TERM, QUIT, INT, HUP, USR1, KILL (got signal 11)"},
		{"added listener", func(c *Config) {
			c.Worker.Command = []string{"x"}
			c.Listeners = append(c.Listeners, Listener{Name: "http", Network: "tcp", Address: ":81"})
		}, `listen[1].name: duplicate name "http", also used by listen[0] (line 4)`},
		{"no upgrade table", func(c *Config) { c.Worker.Command = []string{"x"}; c.Upgrade.Commit = "" },
			testPath + `: upgrade.commit: must be "auto" or "manual" (got "")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.change(c)
			err = c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate:\n got %v\nwant %s", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *Error", err)
			}
		})
	}
}

func TestValidateDefaultWithCommand(t *testing.T) {
	c := Default()
	c.Worker.Command = []string{"/bin/true"}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := (&Config{}).Validate(); err == nil {
		t.Fatal("Validate of a zero Config: no error")
	}
}

// TestValidateAll checks that every problem is reported, those with a line
// first, in order.
func TestValidateAll(t *testing.T) {
	c, err := Parse(testPath, []byte("[worker]\ncommand = [\"x\"]\n\n[upgrade]\nsoak = \"1s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.Upgrade.Soak = -1
	c.Worker.Count = 0
	c.Upgrade.Timeout = 0
	if err := (Overrides{Ready: "maybe"}).Apply(c); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range Errors(c.Validate()) {
		got = append(got, e.Error())
	}
	want := []string{
		testPath + ":1: worker.count: must be from 1 to 1024 (got 0)",
		testPath + ":4: upgrade.timeout: must be greater than 0 (got 0s)",
		testPath + ":5: upgrade.soak: must not be negative (got -1ns)",
		`--ready: must be "notify" or "started" (got "maybe")`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
