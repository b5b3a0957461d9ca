package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testPath = "/etc/baton/web.toml"

// TestParseKeys gives each key a valid value and invalid ones; an invalid
// value must be reported at the exact line of its key.
func TestParseKeys(t *testing.T) {
	tests := []struct {
		name string
		toml string
		get  func(*Config) any // for valid input: the field the key sets
		want any               // its value
		err  string            // for invalid input: the whole error
	}{
		// pidfile
		{name: "pidfile absolute", toml: "pidfile = \"/run/baton.pid\"\n",
			get: func(c *Config) any { return c.PIDFile }, want: "/run/baton.pid"},
		{name: "pidfile relative to the file", toml: "pidfile = \"run/../baton.pid\"\n",
			get: func(c *Config) any { return c.PIDFile }, want: "/etc/baton/baton.pid"},
		{name: "pidfile empty is none", toml: "pidfile = \"\"\n",
			get: func(c *Config) any { return c.PIDFile }, want: ""},
		{name: "pidfile integer", toml: "\npidfile = 3\n",
			err: testPath + ":2: pidfile: must be a string (got integer)"},
		{name: "pidfile directory", toml: "pidfile = \"/run/\"\n",
			get: func(c *Config) any { return c.PIDFile }, want: "/run"},

		// worker.command
		{name: "command", toml: "[worker]\ncommand = [\"/bin/srv\", \"-x\"]\n",
			get: func(c *Config) any { return c.Worker.Command }, want: []string{"/bin/srv", "-x"}},
		{name: "command string", toml: "[worker]\ncommand = \"/bin/srv -x\"\n",
			err: testPath + ":2: worker.command: must be an array of strings such as [\"/usr/bin/server\", \"--flag\"] (got string)"},
		{name: "command element on its own line", toml: "[worker]\ncommand = [\n  \"/bin/srv\",\n  8080,\n]\n",
			err: testPath + ":4: worker.command[1]: must be a string (got integer)"},
		{name: "command empty program", toml: "[worker]\n\ncommand = [\"\", \"x\"]\n",
			err: testPath + ":3: worker.command: the program (first element) is empty"},
		{name: "command NUL", toml: "[worker]\ncommand = [\"a\\u0000b\"]\n",
			err: testPath + ":2: worker.command: element 0 contains a NUL byte"},

		// worker.count
		{name: "count", toml: "[worker]\ncount = 8\n",
			get: func(c *Config) any { return c.Worker.Count }, want: 8},
		{name: "count hex", toml: "[worker]\ncount = 0x10\n",
			get: func(c *Config) any { return c.Worker.Count }, want: 16},
		{name: "count zero", toml: "[worker]\n# comment\ncount = 0\n",
			err: testPath + ":3: worker.count: must be from 1 to 1024 (got 0)"},
		{name: "count too many", toml: "[worker]\ncount = 1025\n",
			err: testPath + ":2: worker.count: must be from 1 to 1024 (got 1025)"},
		{name: "count huge", toml: "[worker]\ncount = 9_000_000_000\n",
			err: testPath + ":2: worker.count: integer 9_000_000_000 out of range"},
		{name: "count float", toml: "[worker]\ncount = 1.5\n",
			err: testPath + ":2: worker.count: must be an integer (got float)"},
		{name: "count dotted at top level", toml: "worker.count = 3\n",
			get: func(c *Config) any { return c.Worker.Count }, want: 3},

		// worker.env
		{name: "env sorted", toml: "[worker]\nenv = { B = \"2\", A = \"x=y\" }\n",
			get: func(c *Config) any { return c.Worker.Env }, want: []string{"A=x=y", "B=2"}},
		{name: "env table", toml: "[worker.env]\nGOGC = \"50\"\n_X1 = \"\"\n",
			get: func(c *Config) any { return c.Worker.Env }, want: []string{"GOGC=50", "_X1="}},
		{name: "env bad name", toml: "[worker.env]\nGOGC = \"50\"\n1X = \"a\"\n",
			err: testPath + ":3: worker.env.1X: variable name must be letters, digits and _, not starting with a digit (got \"1X\")"},
		{name: "env quoted name", toml: "[worker.env]\n\"A B\" = \"a\"\n",
			err: testPath + ":2: worker.env.\"A B\": variable name must be letters, digits and _, not starting with a digit (got \"A B\")"},
		{name: "env reserved", toml: "[worker]\nenv = {\n  LISTEN_FDS = \"3\" }\n",
			err: testPath + ":3: worker.env.LISTEN_FDS: baton sets LISTEN_FDS for each worker itself"},
		{name: "env reserved stop timeout", toml: "[worker.env]\nBATON_STOP_TIMEOUT = \"3\"\n",
			err: testPath + ":2: worker.env.BATON_STOP_TIMEOUT: baton sets BATON_STOP_TIMEOUT for each worker itself (from stop_timeout)"},
		{name: "env value integer", toml: "[worker.env]\nN = 1\n",
			err: testPath + ":2: worker.env.N: must be a string (got integer)"},
		{name: "env array", toml: "[worker]\nenv = [\"A=1\"]\n",
			err: testPath + ":2: worker.env: must be a table such as {NAME = \"value\"} (got array)"},

		// worker.dir
		{name: "dir relative", toml: "[worker]\ndir = \"srv\"\n",
			get: func(c *Config) any { return c.Worker.Dir }, want: "/etc/baton/srv"},
		{name: "dir absolute", toml: "[worker]\ndir = \"/srv//app/\"\n",
			get: func(c *Config) any { return c.Worker.Dir }, want: "/srv/app"},
		{name: "dir boolean", toml: "[worker]\ndir = true\n",
			err: testPath + ":2: worker.dir: must be a string (got boolean)"},

		// worker.user, worker.group
		{name: "user name", toml: "[worker]\nuser = \"www-data\"\n",
			get: func(c *Config) any { return c.Worker.User }, want: "www-data"},
		{name: "user id", toml: "[worker]\nuser = \"33\"\n",
			get: func(c *Config) any { return c.Worker.User }, want: "33"},
		{name: "user bad", toml: "[worker]\nuser = \"www data\"\n",
			err: testPath + ":2: worker.user: must be a name (letters, digits, _ . -, starting with a letter or _) or a numeric id (got \"www data\")"},
		{name: "group id -1", toml: "[worker]\ngroup = \"4294967295\"\n",
			err: testPath + ":2: worker.group: must be a name or a numeric id below 4294967295 (got \"4294967295\")"},
		{name: "group integer", toml: "[worker]\ngroup = 33\n",
			err: testPath + ":2: worker.group: must be a string (got integer)"},

		// worker.ready
		{name: "ready started", toml: "[worker]\nready = \"started\"\n",
			get: func(c *Config) any { return c.Worker.Ready }, want: ReadyStarted},
		{name: "ready bad", toml: "[worker]\nready = \"yes\"\n",
			err: testPath + ":2: worker.ready: must be \"notify\" or \"started\" (got \"yes\")"},

		// durations
		{name: "start_timeout", toml: "[worker]\nstart_timeout = \"1m30s\"\n",
			get: func(c *Config) any { return c.Worker.StartTimeout }, want: 90 * time.Second},
		{name: "start_timeout zero", toml: "[worker]\nstart_timeout = \"0s\"\n",
			err: testPath + ":2: worker.start_timeout: must be greater than 0 (got 0s)"},
		{name: "start_timeout integer", toml: "[worker]\nstart_timeout = 30\n",
			err: testPath + ":2: worker.start_timeout: must be a duration string such as \"5s\" or \"100ms\" (got integer)"},
		{name: "start_timeout no unit", toml: "[worker]\nstart_timeout = \"30\"\n",
			err: testPath + ":2: worker.start_timeout: must be a duration such as \"5s\" or \"100ms\" (got \"30\")"},
		{name: "stop_timeout", toml: "[worker]\nstop_timeout = \"2s\"\n",
			get: func(c *Config) any { return c.Worker.StopTimeout }, want: 2 * time.Second},
		{name: "env reserved watchdog", toml: "[worker]\nenv = { WATCHDOG_USEC = \"1\" }\n",
			err: testPath + ":2: worker.env.WATCHDOG_USEC: baton sets WATCHDOG_USEC for each worker itself"},
		{name: "watchdog", toml: "[worker]\nwatchdog = \"10s\"\n",
			get: func(c *Config) any { return c.Worker.Watchdog }, want: 10 * time.Second},
		{name: "watchdog default off", toml: "[worker]\n",
			get: func(c *Config) any { return c.Worker.Watchdog }, want: time.Duration(0)},
		{name: "watchdog off", toml: "[worker]\nwatchdog = \"0s\"\n",
			get: func(c *Config) any { return c.Worker.Watchdog }, want: time.Duration(0)},
		{name: "watchdog too short", toml: "[worker]\nwatchdog = \"10ms\"\n",
			err: testPath + ":2: worker.watchdog: must be \"0s\" (off) or between 100ms and 1h0m0s (got 10ms)"},
		{name: "watchdog too long", toml: "[worker]\nwatchdog = \"2h\"\n",
			err: testPath + ":2: worker.watchdog: must be \"0s\" (off) or between 100ms and 1h0m0s (got 2h0m0s)"},
		{name: "watchdog negative", toml: "[worker]\nwatchdog = \"-1s\"\n",
			err: testPath + ":2: worker.watchdog: must be \"0s\" (off) or between 100ms and 1h0m0s (got -1s)"},
		{name: "watchdog integer", toml: "[worker]\nwatchdog = 10\n",
			err: testPath + ":2: worker.watchdog: must be a duration string such as \"5s\" or \"100ms\" (got integer)"},
		{name: "stop_timeout negative", toml: "[worker]\nstop_timeout = \"-2s\"\n",
			err: testPath + ":2: worker.stop_timeout: must be greater than 0 (got -2s)"},
		{name: "stop_spread default", toml: "[worker]\n",
			get: func(c *Config) any { return c.Worker.StopSpread }, want: time.Duration(0)},
		{name: "stop_spread", toml: "[worker]\nstop_spread = \"10s\"\n",
			get: func(c *Config) any { return c.Worker.StopSpread }, want: 10 * time.Second},
		{name: "stop_spread negative", toml: "[worker]\nstop_spread = \"-1s\"\n",
			err: testPath + ":2: worker.stop_spread: must not be negative (got -1s)"},
		{name: "restart_delay", toml: "[worker]\nrestart_delay = \"1s\"\n",
			get: func(c *Config) any { return c.Worker.RestartDelay }, want: time.Second},
		{name: "restart_delay negative", toml: "[worker]\nrestart_delay = \"-1ms\"\n",
			err: testPath + ":2: worker.restart_delay: must be greater than 0 (got -1ms)"},
		{name: "restart_delay_max", toml: "[worker]\nrestart_delay_max = \"1m\"\n",
			get: func(c *Config) any { return c.Worker.RestartDelayMax }, want: time.Minute},
		{name: "restart_delay_max below restart_delay", toml: "[worker]\nrestart_delay = \"2s\"\nrestart_delay_max = \"1s\"\n",
			err: testPath + ":3: worker.restart_delay_max: must be at least restart_delay (2s) (got 1s)"},
		{name: "restart_delay above default max", toml: "[worker]\nrestart_delay = \"20s\"\n",
			err: testPath + ":1: worker.restart_delay_max: must be at least restart_delay (20s) (got 10s)"},

		// worker.log_identifier: one line of a journal stream's header
		{name: "log_identifier", toml: "[worker]\nlog_identifier = \"web-1.api\"\n",
			get: func(c *Config) any { return c.Worker.LogIdentifier }, want: "web-1.api"},
		{name: "log_identifier UTF-8", toml: "[worker]\nlog_identifier = \"caf\u00e9\"\n",
			get: func(c *Config) any { return c.Worker.LogIdentifier }, want: "café"},
		{name: "log_identifier empty", toml: "[worker]\nlog_identifier = \"\"\n",
			err: testPath + ":2: worker.log_identifier: must not be empty (leave the key out for the program's name)"},
		{name: "log_identifier newline", toml: "[worker]\nlog_identifier = \"web\\n6\"\n",
			err: testPath + ":2: worker.log_identifier: must be printable, without spaces or control characters (got \"web\\n6\")"},
		{name: "log_identifier NUL", toml: "[worker]\nlog_identifier = \"a\\u0000\"\n",
			err: testPath + ":2: worker.log_identifier: must be printable, without spaces or control characters (got \"a\\x00\")"},
		{name: "log_identifier space", toml: "[worker]\nlog_identifier = \"my app\"\n",
			err: testPath + ":2: worker.log_identifier: must be printable, without spaces or control characters (got \"my app\")"},
		{name: "log_identifier line separator", toml: "[worker]\nlog_identifier = \"a\\u2028b\"\n",
			err: testPath + ":2: worker.log_identifier: must be printable, without spaces or control characters (got \"a\\u2028b\")"},
		{name: "log_identifier too long", toml: "[worker]\nlog_identifier = \"" + strings.Repeat("x", 65) + "\"\n",
			err: testPath + ":2: worker.log_identifier: must be at most 64 bytes (got 65)"},
		{name: "log_identifier integer", toml: "[worker]\nlog_identifier = 1\n",
			err: testPath + ":2: worker.log_identifier: must be a string (got integer)"},

		// worker.stop_signal
		{name: "stop_signal short", toml: "[worker]\nstop_signal = \"QUIT\"\n",
			get: func(c *Config) any { return c.Worker.StopSignal }, want: syscall.SIGQUIT},
		{name: "stop_signal SIG", toml: "[worker]\nstop_signal = \"SIGINT\"\n",
			get: func(c *Config) any { return c.Worker.StopSignal }, want: syscall.SIGINT},
		{name: "stop_signal lower case", toml: "[worker]\nstop_signal = \"usr1\"\n",
			get: func(c *Config) any { return c.Worker.StopSignal }, want: syscall.SIGUSR1},
		{name: "stop_signal ignored by workers", toml: "[worker]\nstop_signal = \"USR2\"\n",
			err: testPath + ":2: worker.stop_signal: must be one of TERM, QUIT, INT, HUP, USR1, KILL (got \"USR2\")"},
		{name: "stop_signal unknown", toml: "[worker]\nstop_signal = \"SIGSEGV\"\n",
			err: testPath + ":2: worker.stop_signal: must be one of TERM, QUIT, INT, HUP, USR1, KILL (got \"SIGSEGV\")"},
		{name: "stop_signal number", toml: "[worker]\nstop_signal = 15\n",
			err: testPath + ":2: worker.stop_signal: must be a string (got integer)"},

		// upgrade
		{name: "commit manual", toml: "[upgrade]\ncommit = \"manual\"\n",
			get: func(c *Config) any { return c.Upgrade.Commit }, want: CommitManual},
		{name: "commit bad", toml: "[upgrade]\ncommit = \"later\"\n",
			err: testPath + ":2: upgrade.commit: must be \"auto\" or \"manual\" (got \"later\")"},
		{name: "soak zero", toml: "[upgrade]\nsoak = \"0s\"\n",
			get: func(c *Config) any { return c.Upgrade.Soak }, want: time.Duration(0)},
		{name: "soak negative", toml: "[upgrade]\nsoak = \"-1s\"\n",
			err: testPath + ":2: upgrade.soak: must not be negative (got -1s)"},
		{name: "timeout", toml: "[upgrade]\ntimeout = \"2m\"\n",
			get: func(c *Config) any { return c.Upgrade.Timeout }, want: 2 * time.Minute},
		{name: "timeout zero", toml: "upgrade = { timeout = \"0s\" }\n",
			err: testPath + ":1: upgrade.timeout: must be greater than 0 (got 0s)"},

		// sections of the wrong shape
		{name: "worker not a table", toml: "worker = 1\n",
			err: testPath + ":1: worker: must be [worker] (got integer)"},
		{name: "listen single table", toml: "\n[listen]\nname = \"a\"\n",
			err: testPath + ":2: listen: must be an array of tables, written [[listen]] (got table)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(tt.toml))
			if tt.err != "" {
				if err == nil {
					t.Fatalf("Parse: no error, want %q", tt.err)
				}
				if got := err.Error(); got != tt.err {
					t.Fatalf("Parse error:\n got %s\nwant %s", got, tt.err)
				}
				if c != nil {
					t.Errorf("Parse returned a Config with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		name, toml, want string
	}{
		{"top level", "pidfile = \"/x\"\npidfiel = \"/y\"\n",
			testPath + ":2: pidfiel: unknown key (did you mean \"pidfile\"?)"},
		{"worker key at top level", "count = 2\n",
			testPath + ":1: count: unknown key (it belongs under [worker])"},
		{"in worker", "[worker]\ncommand = [\"x\"]\n\nworkers = 2\n",
			testPath + ":4: worker.workers: unknown key"},
		{"typo in worker", "[worker]\nstop_timout = \"1s\"\n",
			testPath + ":2: worker.stop_timout: unknown key (did you mean \"stop_timeout\"?)"},
		{"in upgrade", "[upgrade]\nsoak = \"1s\"\nmode = \"x\"\n",
			testPath + ":3: upgrade.mode: unknown key"},
		{"in second listener", "[[listen]]\nname = \"a\"\naddress = \":80\"\n[[listen]]\nname = \"b\"\naddress = \":81\"\nadress = \":82\"\n",
			testPath + ":7: listen[1].adress: unknown key (did you mean \"address\"?)"},
		{"section", "[workers]\ncount = 2\n",
			testPath + ":1: workers: unknown key (did you mean \"worker\"?)"},
		{"quoted", "[worker]\n\"a b\" = 1\n",
			testPath + ":2: worker.\"a b\": unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(testPath, []byte(tt.toml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	tests := []struct {
		name, toml string
		line       int
	}{
		{"missing value", "[worker]\ncount =\n", 2},
		{"unclosed table", "\n\n[worker\n", 3},
		{"duplicate key", "[worker]\ncount = 1\ncount = 2\n", 3},
		{"redefined table", "[worker]\n[upgrade]\n[worker]\n", 3},
		{"bad string", "pidfile = \"abc\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(testPath, []byte(tt.toml))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != testPath || e.Line != tt.line {
				t.Errorf("got %s:%d, want %s:%d (%v)", e.File, e.Line, testPath, tt.line, err)
			}
			if !strings.HasPrefix(err.Error(), testPath+":") {
				t.Errorf("error %q does not start with the file", err)
			}
		})
	}
}

// TestParseReportsAll checks that Parse reports every problem, in line order.
func TestParseReportsAll(t *testing.T) {
	toml := `[worker]
count = 0
ready = 1
bogus = 2

[[listen]]
name = 7
address = ":80"
`
	_, err := Parse(testPath, []byte(toml))
	var got []string
	for _, e := range Errors(err) {
		got = append(got, e.Error())
	}
	want := []string{
		testPath + ":2: worker.count: must be from 1 to 1024 (got 0)",
		testPath + ":3: worker.ready: must be a string (got integer)",
		testPath + ":4: worker.bogus: unknown key",
		testPath + ":7: listen[0].name: must be a string (got integer)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Error() = %q, want the lines joined", err.Error())
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(testPath, nil)
	if err != nil {
		t.Fatalf("Parse(empty): %v", err)
	}
	want := Default()
	want.Path = testPath
	if got := strip(c); !reflect.DeepEqual(got, strip(want)) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := c.Validate(); err == nil || err.Error() != testPath+": worker.command: required: set command = [\"/path/to/server\", …] under [worker], or give the command after --" {
		t.Errorf("Validate of an empty file: %v", err)
	}
}

func TestParseRelativePathWithoutFile(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("", []byte("pidfile = \"x.pid\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "x.pid"); c.PIDFile != want {
		t.Errorf("PIDFile = %q, want %q", c.PIDFile, want)
	}
	_, err = Parse("", []byte("\npidfile = 1\n"))
	if want := "line 2: pidfile: must be a string (got integer)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.toml")
	if err := os.WriteFile(path, []byte("pidfile = \"web.pid\"\n[worker]\ncount = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":3: worker.count: must be from 1 to 1024 (got 0)"; err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %q", err, want)
	}

	if err := os.WriteFile(path, []byte("pidfile = \"web.pid\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.PIDFile != filepath.Join(dir, "web.pid") {
		t.Errorf("Path %q PIDFile %q, want %q and the pid file next to it", c.Path, c.PIDFile, path)
	}

	missing := filepath.Join(dir, "missing.toml")
	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if want := missing + ": open: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load(missing) = %v, want %q", err, want)
	}
}

func TestLoadTooLarge(t *testing.T) {
	dir := t.TempDir()
	// A comment of exactly MaxFileSize bytes, then one byte more.
	limit := []byte("#" + strings.Repeat("x", MaxFileSize-2) + "\n")
	tests := []struct {
		name string
		data []byte
		size int64  // if not 0: the file is data made this long by a hole
		err  string // "" for no error
	}{
		{"at the limit", limit, 0, ""},
		{"over the limit", append(limit, '\n'), 0, ": too large (1048577 bytes, limit 1048576)"},
		{"far over the limit", limit, 1 << 40, ": too large (1099511627776 bytes, limit 1048576)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".toml")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.size != 0 {
				if err := os.Truncate(path, tt.size); err != nil {
					t.Skip(err) // a file system without sparse files
				}
			}
			_, err := Load(path)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.err != "" && (err == nil || err.Error() != path+tt.err):
				t.Fatalf("Load: %v, want %q", err, path+tt.err)
			}
		})
	}

	// Neither a regular file nor of known size: read only as far as the limit.
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip(err)
	}
	_, err := Load("/dev/zero")
	if want := "/dev/zero: too large (more than 1048576 bytes, limit 1048576)"; err == nil || err.Error() != want {
		t.Errorf("Load(/dev/zero) = %v, want %q", err, want)
	}
}

func TestExampleFile(t *testing.T) {
	c, err := Parse("/usr/share/baton/default.toml", []byte(Example()))
	if err != nil {
		t.Fatalf("default.toml does not parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("default.toml does not validate: %v", err)
	}
	if got := c.Worker.Command; !reflect.DeepEqual(got, []string{"hello"}) {
		t.Errorf("command = %q, want [hello]", got)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Name != "http" {
		t.Errorf("listeners = %+v, want one named http", c.Listeners)
	}
	// Every key the decoder knows is documented, at least in a comment.
	for _, keys := range [][]string{topKeys, listenKeys, workerKeys, upgradeKeys, metricsKeys} {
		for _, k := range keys {
			if !strings.Contains(Example(), k+" = ") && !strings.Contains(Example(), "["+k+"]") && !strings.Contains(Example(), "[["+k+"]]") {
				t.Errorf("default.toml does not document %q", k)
			}
		}
	}
}

// strip returns a copy of c without the positions, for comparisons.
func strip(c *Config) *Config {
	out := *c
	out.lines, out.flags = nil, nil
	out.Listeners = nil
	for _, l := range c.Listeners {
		l.src = nil
		out.Listeners = append(out.Listeners, l)
	}
	return &out
}
