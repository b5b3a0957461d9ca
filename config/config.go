package config

import (
	"os"
	"syscall"
	"time"
)

// Values of Worker.Ready.
const (
	// ReadyNotify: a worker is ready when it sends READY=1 to its master.
	ReadyNotify = "notify"
	// ReadyStarted: a worker is ready as soon as its process has started.
	ReadyStarted = "started"
)

// The bounds of worker.watchdog when it is on, and of the WATCHDOG_USEC= a worker may
// send to change its own. Below MinWatchdog a worker on a loaded machine (a scheduler
// hiccup, a garbage collection) would be killed for being slow rather than hung; above
// MaxWatchdog a hung worker would hold its slot for hours, which is no watchdog.
const (
	MinWatchdog = 100 * time.Millisecond
	MaxWatchdog = time.Hour
)

// DefaultMetricsPath is the URL path of the metrics endpoint unless
// metrics.path says otherwise.
const DefaultMetricsPath = "/metrics"

// Values of Upgrade.Commit.
const (
	// CommitAuto: the old master commits an upgrade by itself, Upgrade.Soak
	// after the new generation is ready.
	CommitAuto = "auto"
	// CommitManual: the old master commits an upgrade only on SIGQUIT.
	CommitManual = "manual"
)

// Limits checked by Validate.
const (
	MaxWorkers     = 1024  // highest worker.count
	MaxBacklog     = 65535 // highest listen.backlog
	MaxNameLen     = 255   // longest listener name
	MaxMetricsPath = 255   // longest metrics.path
	MaxLogIdent    = 64    // longest worker.log_identifier
	maxUnixPath    = 107   // sun_path holds 108 bytes, one of them the NUL
	maxSocketMode  = 0o777 // only permission bits make sense on a socket file
)

// Config is one baton configuration: a file, flags, or a file with flags on
// top. Parse fills it from TOML; Overrides.Apply lays flags over it; Validate
// checks the result. Errors about a value that came from the file name the
// file and the line of its key, even after Apply.
type Config struct {
	Path          string     // absolute path of the file it came from ("" when built from flags alone)
	PIDFile       string     // key "pidfile"; "" = none; made absolute relative to the config file's dir
	ControlSocket string     // key "control_socket"; "" = default (see ControlPath); "@name" = abstract; else made absolute like PIDFile
	Listeners     []Listener // [[listen]]
	Worker        Worker     // [worker]
	Upgrade       Upgrade    // [upgrade]
	Reload        Reload     // [reload]
	Health        Health     // [health]
	Rollout       Rollout    // [rollout]
	Metrics       Metrics    // [metrics]

	lines map[string]int    // key ("worker.count") -> line in Path where it was set
	flags map[string]string // key -> the flag that set it ("--workers"); wins over lines
}

// Listener is one socket baton opens itself and hands to every worker under
// Name (LISTEN_FDNAMES).
type Listener struct {
	Name    string      // required, [A-Za-z0-9_.-]{1,255}, unique
	Network string      // tcp tcp4 tcp6 unix udp udp4 udp6; default from Address prefix or "tcp"
	Address string      // "127.0.0.1:8080", "[::1]:80", "/run/x.sock", "@abstract"; stored without a network prefix
	Mode    os.FileMode // key "mode", a string "0660" (octal), unix only; 0 = leave as created
	Owner   string      // unix only: user name or numeric uid of the socket file
	Group   string      // unix only: group name or numeric gid of the socket file
	Backlog int         // 0 = system default; stream sockets only

	src *source // where it came from, for error positions; nil when built in code
}

// source tells where a Listener came from: a [[listen]] table or a flag.
type source struct {
	index int            // position among the file's [[listen]] tables
	line  int            // line of its [[listen]] header (or of its inline table)
	lines map[string]int // short key ("mode") -> line
	flag  string         // `--listen "http=…"` when it came from a flag
}

// Worker says how to run the user's server program.
type Worker struct {
	Command         []string       // required, non-empty; key "command" (array of strings)
	Count           int            // key "count", default 1, 1..1024
	Env             []string       // key "env", a TOML table {K="V"}; stored as "K=V" sorted by K
	Dir             string         // key "dir"; made absolute relative to the config file's dir
	User, Group     string         // keys "user", "group": names or numeric ids (syntax checked here, existence at start)
	Ready           string         // key "ready": "notify" (default) | "started"
	StartTimeout    time.Duration  // key "start_timeout", default 30s
	StopSignal      syscall.Signal // key "stop_signal", default SIGTERM
	StopTimeout     time.Duration  // key "stop_timeout" (the drain timeout before SIGKILL), default 30s
	Watchdog        time.Duration  // key "watchdog": each worker's WATCHDOG_USEC; 0 (default) = off, else MinWatchdog..MaxWatchdog
	StopSpread      time.Duration  // key "stop_spread": a graceful retire's stop signals spread over it, default 0 (all at once); >= 0
	RestartDelay    time.Duration  // key "restart_delay", first crash-restart delay, default 100ms
	RestartDelayMax time.Duration  // key "restart_delay_max", cap of the doubling, default 10s; >= RestartDelay
	LogIdentifier   string         // key "log_identifier": the workers' SYSLOG_IDENTIFIER; "" = JournalIdentifier's default
}

// Upgrade tunes the hot upgrade (SIGUSR2).
type Upgrade struct {
	Commit  string        // key "commit": "auto" (default) | "manual"
	Soak    time.Duration // key "soak", default 5s (auto commit waits this long after the new generation is ready)
	Timeout time.Duration // key "timeout", default 60s (new master must be ready within it)
}

// Reload tunes the reload (SIGHUP).
type Reload struct {
	// Soak is key "soak", default 0: how long a reload's new workers serve beside the old
	// ones, on probation, after every new one is ready; the old ones retire only then.
	Soak time.Duration
}

// Values of Rollout.Strategy.
const (
	// StrategyAll: every new worker starts beside the old ones; the old ones retire once
	// every new one is ready (and passed probation).
	StrategyAll = "all"
	// StrategyRolling: Rollout.Surge new workers at a time; when they are ready, as many old
	// ones retire, then the next batch.
	StrategyRolling = "rolling"
)

// Rollout says how a new generation's workers replace the old ones (reloads).
type Rollout struct {
	Strategy string // key "strategy": "all" (default) | "rolling"
	Surge    int    // key "surge", default 1: rolling: new workers started at a time (at most count + surge run)
	Canary   int    // key "canary", default 0: rolling: the first batch, on probation before the rest follows
}

// Health is the check a new generation must pass while it is on probation (a reload's
// soak, an upgrade's soak).
type Health struct {
	Check         []string      // key "check": the command and its arguments; empty = no check
	CheckInterval time.Duration // key "check_interval", default 1s: from the end of one run to the start of the next
	CheckTimeout  time.Duration // key "check_timeout", default 5s: a run that takes longer fails
	CheckFailures int           // key "check_failures", default 3: failed runs in a row that fail the generation
}

// On reports whether a health check is configured.
func (h Health) On() bool { return len(h.Check) > 0 }

// Metrics is the optional Prometheus endpoint of the master in charge. It
// is off unless Address is set.
type Metrics struct {
	// Network is "tcp" or "unix", from Address: "unix:/run/m.sock", a path
	// starting with / and "@name" are unix, anything else tcp.
	Network string
	// Address is key "address" without its "unix:" prefix: "127.0.0.1:9101",
	// "[::1]:9101", "/run/baton/web/metrics.sock" (made absolute like
	// PIDFile) or "@name"; "" = no metrics (the default). A TCP host must be
	// an IP address: the endpoint binds where the file says, no name lookup.
	Address string
	// Path is key "path": the URL path served; "" = DefaultMetricsPath.
	Path string
}

// URLPath returns the URL path the endpoint serves.
func (m Metrics) URLPath() string {
	if m.Path == "" {
		return DefaultMetricsPath
	}
	return m.Path
}

// On reports whether the metrics endpoint is configured.
func (m Metrics) On() bool { return m.Address != "" }

// Default returns a Config with every default filled in, no listeners and
// no command. Each call returns a new Config.
func Default() *Config {
	return &Config{
		Worker: Worker{
			Count:           1,
			Ready:           ReadyNotify,
			StartTimeout:    30 * time.Second,
			StopSignal:      syscall.SIGTERM,
			StopTimeout:     30 * time.Second,
			RestartDelay:    100 * time.Millisecond,
			RestartDelayMax: 10 * time.Second,
		},
		Upgrade: Upgrade{
			Commit:  CommitAuto,
			Soak:    5 * time.Second,
			Timeout: 60 * time.Second,
		},
		Rollout: Rollout{Strategy: StrategyAll, Surge: 1},
		Health: Health{
			CheckInterval: time.Second,
			CheckTimeout:  5 * time.Second,
			CheckFailures: 3,
		},
	}
}
