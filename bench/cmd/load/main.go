// Command load makes HTTP load against a loopback address and reports every
// failed request by kind, with latency percentiles. It is baton's benchmark
// load generator (package bench/load) on its own:
//
//	go run ./bench/cmd/load -addr 127.0.0.1:8080 [-clients 64] [-mode keep-alive|new-conn]
//	    [-duration 10s] [-requests N] [-timeout 5s] [-path /]
//	    [-json] [-until-eof] [-warm N]
//
// It never retries a request. It exits 0 when every request succeeded, 1 when
// any failed, 2 on bad flags.
//
// For a program that runs it elsewhere (the benchmark driver runs it inside a
// systemd-lab container, whose network namespace has its own loopback): -json
// prints the whole result as one JSON object (package load's Result, which
// decodes back to an equal Result) instead of text; -until-eof also ends the
// run when standard input reaches end of file, so that the run lasts as long as
// the caller holds a pipe open and no longer than the caller lives; -warm N
// prints the line "load: warm" on standard error once N requests have
// finished, a sign that the target serves.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o load.Options
	var mode string
	var asJSON, untilEOF bool
	var warm int64
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "target `host:port` (loopback only)")
	fs.StringVar(&o.Path, "path", "/", "request path")
	fs.IntVar(&o.Clients, "clients", load.DefaultClients, "concurrent clients")
	fs.StringVar(&mode, "mode", "keep-alive", "keep-alive or new-conn")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to run")
	fs.Int64Var(&o.Requests, "requests", 0, "stop after this many requests (0: no bound but the duration's)")
	fs.DurationVar(&o.Timeout, "timeout", load.DefaultTimeout, "per-request timeout, dial included")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&untilEOF, "until-eof", false, "also stop when standard input reaches end of file")
	fs.Int64Var(&warm, "warm", 0, "print \"load: warm\" on standard error once this many requests have finished")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, err := load.ParseMode(mode)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	o.Mode = m
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if untilEOF {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	l, err := load.Start(o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		if warm > 0 {
			announceWarm(ctx, l, warm, stderr)
		}
	}()
	select {
	case <-ctx.Done():
	case <-l.Done():
	}
	r := l.Stop()
	<-announced // it returns once l is done: nothing writes to stderr after run
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(r); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	} else {
		summarize(stdout, r)
	}
	if r.FailedTotal() > 0 {
		return 1
	}
	return 0
}

// announceWarm prints "load: warm" once n requests of l have finished. It returns when it
// has, or when ctx or l ends (printing the line if the n requests had finished by then).
func announceWarm(ctx context.Context, l *load.Load, n int64, w io.Writer) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	ended := false
	for {
		if got := l.Finished(); got >= n {
			fmt.Fprintf(w, "load: warm: %d requests finished\n", got)
			return
		}
		if ended {
			return
		}
		select {
		case <-ctx.Done():
			ended = true // one last look
		case <-l.Done():
			ended = true
		case <-tick.C:
		}
	}
}

func summarize(w io.Writer, r *load.Result) {
	o := r.Options
	fmt.Fprintf(w, "target     %s%s, %d clients, %s, ended by %s after %s\n",
		o.Addr, o.Path, o.Clients, o.Mode, r.Limit, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "requests   %d (%d ok, %d failed), %d connections, %.0f ok/s\n",
		r.Requests, r.OK, r.FailedTotal(), r.Conns, r.Throughput())
	fmt.Fprintf(w, "failures  ")
	for _, k := range load.Kinds {
		fmt.Fprintf(w, " %s=%d", k, r.Failed[k])
	}
	fmt.Fprintf(w, " (on reused connections: %d)\n", r.Reused)
	h := &r.Latency
	fmt.Fprintf(w, "latency    p50 %v  p99 %v  p99.9 %v  max %v\n",
		h.Quantile(0.50), h.Quantile(0.99), h.Quantile(0.999), h.Max())
	for i, f := range r.Samples {
		if i == 5 {
			fmt.Fprintf(w, "           … %d more\n", len(r.Samples)-5)
			break
		}
		fmt.Fprintf(w, "failure    %s %s reused=%t %s\n", f.At.Format("15:04:05.000000"), f.Kind, f.Reused, f.Err)
	}
}
