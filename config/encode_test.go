package config

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// roundTrip encodes c, parses the result and checks it is equal to c.
func roundTrip(t *testing.T, c *Config) []byte {
	t.Helper()
	out, err := c.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	back, err := Parse(c.Path, out)
	if err != nil {
		t.Fatalf("Parse(Encode()): %v\n%s", err, out)
	}
	if got, want := strip(back), strip(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\nTOML:\n%s", got, want, out)
	}
	return out
}

func TestEncodeRoundTrip(t *testing.T) {
	full := Default()
	full.Path = testPath
	full.PIDFile = "/run/baton \"web\".pid"
	full.ControlSocket = "/run/baton/web/control.sock"
	full.Listeners = []Listener{
		{Name: "http", Network: "tcp", Address: "127.0.0.1:8080", Backlog: 511},
		{Name: "sock", Network: "unix", Address: "/run/web.sock", Mode: 0o660, Owner: "www-data", Group: "33"},
		{Name: "odd", Network: "tcp", Address: "udp:80"}, // host "udp", not a prefix
		{Name: "dns", Network: "udp6", Address: "[::]:53"},
	}
	full.Worker = Worker{
		Command:         []string{"/usr/bin/app", "--name=\"x\"", "back\\slash", "tab\there", "nl\nhere", "bell\a", "ünïcödé", ""},
		Count:           16,
		Env:             []string{"A=1", "B=", "C=x=y"},
		Dir:             "/srv/app",
		User:            "app",
		Group:           "app",
		Ready:           ReadyStarted,
		StartTimeout:    90 * time.Second,
		StopSignal:      syscall.SIGQUIT,
		StopTimeout:     1500 * time.Millisecond,
		Watchdog:        1500 * time.Millisecond,
		RestartDelay:    time.Nanosecond,
		RestartDelayMax: 1<<63 - 1,
	}
	full.Upgrade = Upgrade{Commit: CommitManual, Soak: 0, Timeout: time.Hour}
	full.Reload = Reload{Soak: 2500 * time.Millisecond}
	full.Rollout = Rollout{Strategy: StrategyRolling, Surge: 2, Canary: 1}
	full.Health = Health{Check: []string{"/usr/local/bin/smoke", "--port", "8080", "a \"b\""}, CheckInterval: 500 * time.Millisecond, CheckTimeout: 2 * time.Second, CheckFailures: 2}
	full.Metrics = Metrics{Network: "unix", Address: "/run/baton/web/metrics.sock", Path: "/m\"x"}
	if err := full.Validate(); err != nil {
		t.Fatalf("test config is not valid: %v", err)
	}

	example, err := Parse(testPath, []byte(Example()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *Config
	}{
		{"default.toml", example},
		{"every field", full},
		{"metrics on tcp", &Config{Path: testPath, Metrics: Metrics{Network: "tcp", Address: "[::1]:9101"}, Worker: full.Worker, Upgrade: full.Upgrade, Health: Default().Health, Rollout: Default().Rollout}},
		{"metrics on an abstract socket", &Config{Path: testPath, Metrics: Metrics{Network: "unix", Address: "@m"}, Worker: full.Worker, Upgrade: full.Upgrade, Health: Default().Health, Rollout: Default().Rollout}},
		{"abstract control socket", &Config{Path: testPath, ControlSocket: "@baton \"web\"", Worker: full.Worker, Upgrade: full.Upgrade, Health: Default().Health, Rollout: Default().Rollout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.c)
		})
	}
}

func TestEncodeOutput(t *testing.T) {
	c := Default()
	c.Worker.Command = []string{"hello"}
	c.Listeners = []Listener{{Name: "http", Network: "tcp", Address: ":8080"}}
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `[[listen]]
name = "http"
network = "tcp"
address = ":8080"

[worker]
command = ["hello"]
count = 1
ready = "notify"
start_timeout = "30s"
stop_signal = "SIGTERM"
stop_timeout = "30s"
watchdog = "0s"
stop_spread = "0s"
restart_delay = "100ms"
restart_delay_max = "10s"

[upgrade]
commit = "auto"
soak = "5s"
timeout = "1m0s"
`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"invalid UTF-8", func(c *Config) { c.Worker.Command = []string{"\xff"} }, "not valid UTF-8"},
		{"env entry", func(c *Config) { c.Worker.Env = []string{"NOEQUALS"} }, "not NAME=value"},
		{"signal", func(c *Config) { c.Worker.StopSignal = syscall.SIGSEGV }, "has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			_, err := c.Encode()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config: encode: ") {
				t.Errorf("Encode: %v, want an error about %q", err, tt.want)
			}
		})
	}
}
