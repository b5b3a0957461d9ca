//go:build linux

package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// Errors openListeners returns, for errors.Is.
var (
	errNothingToServe = errors.New("no listener was passed (LISTEN_FDS is unset) and no -listen address was given: run hello under baton or systemd socket activation, or give -listen ADDR")
	errNotOurs        = errors.New("LISTEN_FDS is set but LISTEN_PID names another process")
	errNoStream       = errors.New("no stream listener among the passed file descriptors")
	errMissingName    = errors.New("no listener passed with the name")
)

// namedListener is a listener with its name: from LISTEN_FDNAMES, or
// "listen" for the one opened from -listen.
type namedListener struct {
	name string
	net.Listener
}

// openListeners returns the listeners to serve on: the stream listeners
// passed by socket activation whose names are in names ("*" = all), or, if
// no listener was passed at all, one it opens on the TCP address listen
// (when not empty). It unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES.
// The caller owns the listeners returned; every passed listener it does not
// return is closed, so this process keeps no socket it does not serve.
func openListeners(names []string, listen string) ([]namedListener, error) {
	passedPID, passedFDs := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	// ListenersWithNames checks LISTEN_PID against our pid, unsets the
	// LISTEN_* variables, and skips what is not a stream listener.
	byName, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	if len(byName) > 0 {
		return pick(byName, names)
	}
	switch {
	case passedFDs != "" && passedPID != strconv.Itoa(os.Getpid()):
		return nil, fmt.Errorf("%w: LISTEN_FDS=%s LISTEN_PID=%q, this process is %d; whatever started hello must set LISTEN_PID to hello's own pid (a wrapper that forks breaks it)",
			errNotOurs, passedFDs, passedPID, os.Getpid())
	case passedFDs != "" && passedFDs != "0":
		return nil, fmt.Errorf("%w: LISTEN_FDS=%s; hello serves TCP or unix stream sockets only", errNoStream, passedFDs)
	case listen == "":
		return nil, errNothingToServe
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("-listen %s: %w", listen, err)
	}
	return []namedListener{{name: "listen", Listener: l}}, nil
}

// pick returns the listeners of byName whose names are in names ("*" =
// all), in name order, and closes the others. If a name has no listener it
// closes them all and says which names it got instead.
func pick(byName map[string][]net.Listener, names []string) ([]namedListener, error) {
	all := slices.Contains(names, "*")
	received := slices.Sorted(maps.Keys(byName))
	var picked []namedListener
	var missing []string
	for _, name := range names {
		if name != "*" && len(byName[name]) == 0 {
			missing = append(missing, strconv.Quote(name))
		}
	}
	for _, name := range received {
		for _, l := range byName[name] {
			if len(missing) == 0 && (all || slices.Contains(names, name)) {
				picked = append(picked, namedListener{name: name, Listener: l})
			} else {
				l.Close()
			}
		}
	}
	if len(missing) > 0 {
		for i, name := range received {
			received[i] = strconv.Quote(name)
		}
		return nil, fmt.Errorf("%w %s (received: %s); name the listeners with -names, or \"*\" for all",
			errMissingName, strings.Join(missing, ", "), strings.Join(received, ", "))
	}
	return picked, nil
}

// closeListeners closes every listener in ls.
func closeListeners(ls []namedListener) {
	for _, l := range ls {
		l.Close()
	}
}
