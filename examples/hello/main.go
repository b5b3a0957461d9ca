//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/sdnotify"
)

// Exit statuses.
const (
	exitOK    = 0 // drained cleanly, or -h
	exitError = 1 // nothing to serve on, serving failed, or a request was cut at -shutdown-timeout
	exitUsage = 2 // bad flags
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// config is what the flags say, and BATON_STOP_TIMEOUT where they say nothing.
type config struct {
	names           []string
	listen          string
	drain           time.Duration
	closeSpread     time.Duration
	shutdownTimeout time.Duration
	set             map[string]bool // the flags given on the command line
}

// run is the whole program: it serves until a stop signal, drains, and
// returns the exit status.
func run(args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("pid", os.Getpid())
	if env, ok := os.LookupEnv(stopTimeoutEnv); ok {
		if err := cfg.fitStopTimeout(env); err != nil {
			log.Warn("ignoring "+stopTimeoutEnv, "err", err)
		}
	}

	// Dispositions first, so that no signal kills us while we start.
	stop := handleSignals()

	listeners, err := openListeners(cfg.names, cfg.listen)
	if err != nil {
		log.Error("nothing to serve on", "err", err)
		return exitError
	}
	notifier, err := sdnotify.New()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		closeListeners(listeners)
		log.Error("bad NOTIFY_SOCKET", "err", err)
		return exitError
	}
	defer notifier.Close() // nil when NOTIFY_SOCKET is unset: a no-op

	srv := newServer(listeners, helloHandler(identity()), log)
	srv.start()
	for _, l := range listeners {
		log.Info("serving", "name", l.name, "addr", l.Addr().String())
	}

	status := exitOK
	if err := notifier.Notify(sdnotify.Ready); err != nil {
		log.Error("cannot report ready; stopping", "err", err)
		status = exitError
	} else {
		defer startWatchdog(notifier, log)()
		select {
		case sig := <-stop:
			log.Info("draining", "signal", sig.String(), "window", cfg.drain, "close_spread", cfg.closeSpread, "shutdown_timeout", cfg.shutdownTimeout)
		case err := <-srv.failed:
			log.Error("serving failed; draining", "err", err)
			status = exitError
		}
	}

	srv.stopAccepting()
	if err := notifier.Notify(sdnotify.Stopping); err != nil {
		log.Warn("cannot report stopping", "err", err)
	}
	srv.drainWindow(cfg.drain)
	if cfg.closeSpread > 0 {
		n := srv.closeIdleSpread(cfg.closeSpread)
		log.Info("idle connections closed one at a time", "closed", n, "over", cfg.closeSpread)
	}
	closed, left := srv.closeIdleConns()
	log.Info("drain window over", "idle_closed", closed, "waiting", left)
	unused, err := srv.finish(cfg.shutdownTimeout)
	if unused > 0 {
		log.Info("closed connections that sent no request", "count", unused, "timeout", cfg.shutdownTimeout)
	}
	if err != nil {
		log.Error("shutdown did not finish; connections cut", "err", err, "timeout", cfg.shutdownTimeout)
		return exitError
	}
	log.Info("stopped")
	return status
}

// identity is the body of every response but /healthz.
func identity() string {
	generation := os.Getenv("BATON_GENERATION")
	if generation == "" {
		generation = "0"
	}
	return fmt.Sprintf("pid=%d generation=%s worker=%s\n", os.Getpid(), generation, os.Getenv("BATON_WORKER"))
}

// parseFlags parses args. It returns flag.ErrHelp for -h, after printing
// the usage, and any other error after printing it with the usage.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	names := fs.String("names", "http", `comma-separated names of the socket-activated listeners to serve; "*" = all`)
	fs.StringVar(&cfg.listen, "listen", "", "TCP `address` to listen on when no listener was passed (running bare)")
	fs.DurationVar(&cfg.drain, "drain", time.Second, "how long to keep serving open connections, with Connection: close, after accepting stops")
	fs.DurationVar(&cfg.closeSpread, "close-spread", 0, "after the drain window, close the idle keep-alive connections one at a time over this long (0: all at once; default from $BATON_STOP_TIMEOUT)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait after the drain window for requests in flight and for first requests still to come")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hello [flags]\n\n"+
			"hello is baton's reference worker: an HTTP server that answers with its pid and\n"+
			"generation, takes its listeners by socket activation (LISTEN_FDS), reports\n"+
			"READY=1 and STOPPING=1 to $NOTIFY_SOCKET, and on SIGTERM, SIGINT or SIGQUIT\n"+
			"stops accepting, drains for -drain, then shuts down. It ignores SIGHUP,\n"+
			"SIGUSR1, SIGUSR2 and SIGWINCH. With $BATON_STOP_TIMEOUT (seconds) set, the\n"+
			"flags not given fit the drain into it and spread the closing of idle\n"+
			"connections over most of it.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.set[f.Name] = true })
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(stderr, "%v\n", err)
		fs.Usage()
		return config{}, err
	}
	var err error
	cfg.names, err = parseNames(*names)
	if err == nil && cfg.drain < 0 {
		err = fmt.Errorf("-drain %v: must not be negative", cfg.drain)
	}
	if err == nil && cfg.closeSpread < 0 {
		err = fmt.Errorf("-close-spread %v: must not be negative", cfg.closeSpread)
	}
	if err == nil && cfg.shutdownTimeout <= 0 {
		err = fmt.Errorf("-shutdown-timeout %v: must be positive", cfg.shutdownTimeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		fs.Usage()
		return config{}, err
	}
	return cfg, nil
}

// errNoNames is returned by parseNames for a list without a name.
var errNoNames = errors.New("-names: no listener name given")

// parseNames splits a comma-separated list of listener names, trimming
// spaces and dropping empty and repeated entries. It fails if none is left.
func parseNames(list string) ([]string, error) {
	var names []string
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %q", errNoNames, list)
	}
	return names, nil
}
