//go:build linux

// Sandbox is a worker that tries what baton's hardened units forbid, reports each
// attempt on stdout (the journal), and then execs the real worker, for the lab test of
// the units' sandbox. Each attempt is harmless where it is allowed:
//
//   - write DIR: creates and removes a file in each directory of -outside (outside
//     ReadWritePaths=);
//   - module: init_module(2) with an empty image (EPERM when refused; without the
//     sandbox, root gets ENOEXEC or EINVAL and no module is loaded);
//   - clock: clock_settime(2) with tv_nsec out of range (EPERM when refused; without the
//     sandbox, EINVAL and the clock is not touched);
//   - runtime: creates and removes a file in $RUNTIME_DIRECTORY, which must work.
//
// One line per attempt:
//
//	sandbox: ATTEMPT: ok
//	sandbox: ATTEMPT: errno NAME (text)
//
// Usage:
//
//	sandbox -outside DIR[,DIR…] -- WORKER ARGS…
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	outside := flag.String("outside", "/var/lib", "directories outside ReadWritePaths=, comma-separated")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: sandbox -outside DIR[,DIR…] -- WORKER ARGS…")
		os.Exit(2)
	}
	for _, dir := range strings.Split(*outside, ",") {
		report("write "+dir, writeIn(dir))
	}
	report("module", unix.InitModule(nil, ""))
	bad := unix.Timespec{Sec: 1, Nsec: 2_000_000_000}
	report("clock", unix.ClockSettime(unix.CLOCK_REALTIME, &bad))
	if rt := os.Getenv("RUNTIME_DIRECTORY"); rt != "" {
		report("runtime", writeIn(rt))
	}
	argv := flag.Args()
	path, err := exec.LookPath(argv[0])
	if err == nil {
		err = syscall.Exec(path, argv, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "sandbox: exec %s: %v\n", argv[0], err)
	os.Exit(2)
}

// writeIn creates and removes a file in dir.
func writeIn(dir string) error {
	p := filepath.Join(dir, fmt.Sprintf("sandbox-%d", os.Getpid()))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(p)
}

func report(what string, err error) {
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Printf("sandbox: %s: ok\n", what)
	case errors.As(err, &errno):
		fmt.Printf("sandbox: %s: errno %s (%v)\n", what, unix.ErrnoName(errno), errno)
	default:
		fmt.Printf("sandbox: %s: %v\n", what, err)
	}
}
