//go:build linux

package main

import (
	"syscall"
	"testing"
)

func TestSignals(t *testing.T) {
	tests := []struct {
		name    string
		ignored []syscall.Signal // sent first; hello must survive them
		stop    syscall.Signal   // then this one must drain it
	}{
		{"TERM", nil, syscall.SIGTERM},
		{"INT", nil, syscall.SIGINT},
		{"QUIT", nil, syscall.SIGQUIT},
		{"HUP USR1 USR2 WINCH then TERM", []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}, syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, f := listenTCP(t)
			p := start(t, spec{files: []passed{{"http", f}}})
			p.expectNotify(t, "READY=1") // dispositions are set before
			c := mustDial(t, ln.Addr().String())
			c.mustGet(t, "/")
			for _, sig := range tt.ignored {
				p.signal(t, sig)
			}
			// Still serving on the same connection. A signal with a
			// fatal default would be acted on no later than the stop
			// signal sent after it, so wait below would see it.
			if resp, _ := c.mustGet(t, "/"); resp.Close {
				t.Errorf("ignored signals started a drain (Connection: close)")
			}
			c.Close()
			p.signal(t, tt.stop)
			p.expectNotify(t, "STOPPING=1")
			if got := p.wait(t); got != 0 {
				t.Errorf("exit status: got %d, want 0", got)
			}
			p.expectNoNotify(t)
		})
	}
}

// TestSecondStopSignal checks that a stop signal during the drain neither
// kills hello nor cuts the drain short.
func TestSecondStopSignal(t *testing.T) {
	ln, f := listenTCP(t)
	p := start(t, spec{files: []passed{{"http", f}}, args: []string{"-drain", "1h"}})
	p.expectNotify(t, "READY=1")
	c := mustDial(t, ln.Addr().String())
	c.mustGet(t, "/")
	p.signal(t, syscall.SIGTERM)
	p.expectNotify(t, "STOPPING=1")
	// c keeps hello in its drain window until c is used.
	p.signal(t, syscall.SIGINT)
	p.signal(t, syscall.SIGTERM)
	if resp, _ := c.mustGet(t, "/"); !resp.Close {
		t.Errorf("response during the drain without Connection: close")
	}
	c.expectEOF(t)
	if got := p.wait(t); got != 0 {
		t.Errorf("exit status: got %d, want 0", got)
	}
	p.expectNoNotify(t)
}
