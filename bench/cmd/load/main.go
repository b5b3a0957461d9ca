// Command load makes HTTP load against a loopback address and reports every
// failed request by kind, with latency percentiles. It is baton's benchmark
// load generator (package bench/load) on its own:
//
//	go run ./bench/cmd/load -addr 127.0.0.1:8080 [-clients 64] [-mode keep-alive|new-conn]
//	    [-duration 10s] [-requests N] [-timeout 5s] [-path /]
//
// It never retries a request. It exits 0 when every request succeeded, 1 when
// any failed, 2 on bad flags.
package main

import (
	"context"
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o load.Options
	var mode string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "target `host:port` (loopback only)")
	fs.StringVar(&o.Path, "path", "/", "request path")
	fs.IntVar(&o.Clients, "clients", load.DefaultClients, "concurrent clients")
	fs.StringVar(&mode, "mode", "keep-alive", "keep-alive or new-conn")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to run")
	fs.Int64Var(&o.Requests, "requests", 0, "stop after this many requests (0: no bound but the duration's)")
	fs.DurationVar(&o.Timeout, "timeout", load.DefaultTimeout, "per-request timeout, dial included")
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
	r, err := load.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	summarize(stdout, r)
	if r.FailedTotal() > 0 {
		return 1
	}
	return 0
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
