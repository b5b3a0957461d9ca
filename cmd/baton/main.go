//go:build linux

// Command baton supervises a server program: it holds the listening sockets, runs N
// workers of the program on them, and upgrades, reloads and rolls back without dropping a
// connection, with nginx's signals, standalone or under systemd.
//
//	baton run [-c FILE] [--listen NAME=ADDR]… [--workers N] [--pidfile PATH] [-- CMD ARGS…]
//	baton check -c FILE
//	baton status|reload|upgrade|rollback|commit|stop [-c FILE | --socket PATH | --unit NAME] [--wait] [--timeout D]
//	baton version
//
// See the README for the signals and the configuration reference.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/config"
	"github.com/baton-supervisor/baton/logging"
	"github.com/baton-supervisor/baton/supervisor"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  baton run [-c FILE] [--listen NAME=ADDR]... [--workers N] [--pidfile PATH] [-- CMD ARGS...]
  baton check -c FILE [flags as for run]
  baton status   [-c FILE | --socket PATH | --unit NAME] [--json]
  baton reload   [-c FILE | --socket PATH | --unit NAME] [--wait] [--timeout D]
  baton upgrade  [-c FILE | --socket PATH | --unit NAME] [--wait] [--timeout D]
  baton rollback [-c FILE | --socket PATH | --unit NAME] [--wait] [--timeout D]
  baton commit   [-c FILE | --socket PATH | --unit NAME] [--wait] [--timeout D]
  baton stop     [-c FILE | --socket PATH | --unit NAME] [--wait] [--timeout D]
  baton version

--unit NAME (baton@web) asks systemd over D-Bus for the service's control socket and
MainPID; baton status --unit also shows systemd's view of the service.

With neither -c nor a command, baton run uses its built-in default configuration (the
demo: two "hello" workers on 127.0.0.1:8080).

commit commits an upgrade in flight (commit = "manual": the new master is ready and waits
for it). --wait waits for the result: by default as long as the master says the action can
take at worst (from its own timeouts), 10m with a master too old to say; --timeout D
(90s, 5m) bounds the wait instead.

Exit status of status, reload, upgrade, rollback, commit and stop:
  0  done (without --wait: started)
  1  the master refused, or the action failed or was rolled back
  2  usage
  3  no master to talk to (stop: 0, nothing runs)
  4  still in flight: the wait ended (--timeout, or a manual commit that waits for
     the operator) while the action goes on; see baton status
`)
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "run":
		return run(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "status", "reload", "upgrade", "rollback", "commit", "stop":
		return control(args[0], args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "baton", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "baton: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// runFlags are the flags of run and check.
type runFlags struct {
	file      string
	over      config.Overrides
	logLevel  slog.Level
	logFormat string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func parseRunFlags(name string, args []string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.file, "c", "", "configuration `file` (TOML)")
	fs.Var((*listFlag)(&f.over.Listen), "listen", "a listener `NAME=ADDR` (repeatable): 127.0.0.1:8080, [::1]:80, unix:/run/x.sock, udp:127.0.0.1:53")
	fs.IntVar(&f.over.Workers, "workers", 0, "number of workers")
	fs.StringVar(&f.over.PIDFile, "pidfile", "", "pid file `path`")
	fs.StringVar(&f.over.Ready, "ready", "", "worker readiness: notify or started")
	fs.StringVar(&f.over.Commit, "commit", "", "upgrade commit: auto or manual")
	fs.StringVar(&f.over.Control, "control", "", "control socket `path`")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.over.Command = fs.Args()
	return f, nil
}

// loader returns the function that reads the configuration, now and on every reload: the
// file (or the built-in default when there is neither a file nor a command), then the
// flags over it.
func (f *runFlags) loader() func() (*config.Config, error) {
	return func() (*config.Config, error) {
		var c *config.Config
		var err error
		switch {
		case f.file != "":
			c, err = config.Load(f.file)
		case len(f.over.Command) == 0:
			c, err = config.Parse("", []byte(config.Example()))
		default:
			c = config.Default()
		}
		if err != nil {
			return nil, err
		}
		if err := f.over.Apply(c); err != nil {
			return nil, err
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c, nil
	}
}

func check(args []string, stdout, stderr io.Writer) int {
	f, err := parseRunFlags("check", args, stderr)
	if err != nil {
		return 2
	}
	c, err := f.loader()()
	if err == nil {
		err = supervisor.Precheck(c)
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton: %v\n", err)
		return 1
	}
	where := c.Path
	if where == "" {
		where = "the command line"
	}
	fmt.Fprintf(stdout, "baton: configuration from %s is valid (%d listeners, %d workers of %s)\n",
		where, len(c.Listeners), c.Worker.Count, c.Worker.Command[0])
	return 0
}

func run(args []string, stderr io.Writer) int {
	// Subscribe first: until then HUP, USR2 and friends would kill us with their default
	// action.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, supervisor.Signals...)
	// A reader of our stdout or stderr that goes away (`baton run | tee log`) must not take
	// the service down. The runtime kills a program that writes to a broken pipe on fd 1
	// or 2 unless SIGPIPE is subscribed; subscribed, the write fails with EPIPE and the log
	// line is lost, nothing more (os/signal, "SIGPIPE"). Subscribed, not ignored: programs
	// we exec (workers, /bin/sh) still start with SIGPIPE at its default. Nobody reads the
	// channel; the runtime drops what does not fit.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// Whatever we inherited beyond stdio stays ours: nothing leaks into workers or into a
	// new master unless it is passed on purpose.
	if err := supervisor.CloseOnExecFrom(3); err != nil {
		fmt.Fprintf(stderr, "baton: %v\n", err)
		return 1
	}

	f, err := parseRunFlags("run", args, stderr)
	if err != nil {
		return 2
	}
	log, mode := logging.New(os.Stderr, f.logLevel)
	defer logging.Flush(2 * time.Second) // the last lines, before the process exits
	log.Debug("log output chosen", "log_output", mode.String())
	exe, err := supervisor.Executable(os.Args[0])
	if err != nil {
		log.Error("cannot tell where this binary is; upgrades will not work", "err", err)
	}
	m, err := supervisor.New(supervisor.Options{
		Load:           f.loader(),
		Exe:            exe,
		Args:           os.Args[1:],
		Logger:         log,
		Version:        version,
		SystemdVersion: systemdVersion,
		SystemdMainPID: systemdMainPID,
		WaitMainPID:    waitMain,
		UnitStopping:   unitStopping,
	}, sigs)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			log.Error("bad configuration", "err", err)
		} else {
			log.Error("cannot start", "err", err)
		}
		return 1
	}
	return m.Run()
}
