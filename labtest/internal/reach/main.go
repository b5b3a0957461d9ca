//go:build linux

// Reach tries a baton master's sockets as whoever runs it, for the lab test that another
// local user cannot reach them: it sends STATUS= to the workers' notify socket and
// connects to the control socket, and prints one line for each:
//
//	notify: ok | notify: errno NAME
//	control: ok | control: errno NAME
//
// Exit status 0 when both lines were printed, 2 on bad usage.
//
// Usage:
//
//	reach -notify ADDR -control PATH
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/baton-supervisor/baton/sdnotify"
	"golang.org/x/sys/unix"
)

func main() {
	notify := flag.String("notify", "", "the workers' notify socket ($NOTIFY_SOCKET of a worker)")
	control := flag.String("control", "", "the control socket's path")
	flag.Parse()
	if *notify == "" || *control == "" {
		fmt.Fprintln(os.Stderr, "usage: reach -notify ADDR -control PATH")
		os.Exit(2)
	}
	n, err := sdnotify.Open(*notify)
	if err == nil {
		err = n.Notify("STATUS=reach")
		n.Close()
	}
	report("notify", err)
	c, err := net.Dial("unix", *control)
	if err == nil {
		c.Close()
	}
	report("control", err)
}

func report(what string, err error) {
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Printf("%s: ok\n", what)
	case errors.As(err, &errno):
		fmt.Printf("%s: errno %s\n", what, unix.ErrnoName(errno))
	default:
		fmt.Printf("%s: %v\n", what, err)
	}
}
