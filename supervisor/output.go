//go:build linux

package supervisor

import (
	"os"
	"time"

	"github.com/baton-supervisor/baton/internal/relay"
)

// The workers' standard output and error. When the master's own are a pipe or a socket
// (`baton run | tee log`, a process supervisor's pipe), a worker that shared them would be
// killed by SIGPIPE at its first line after their reader went away; so each worker writes
// into pipes of its own that the master relays (internal/relay). A file, a terminal or
// /dev/null is given to the workers as it is. Where they are systemd's journal stream,
// each worker connects a stream of its own to journald instead (internal/spawn's
// Attr.Journal), so that its lines carry its own identifier (worker.log_identifier, by
// default the program's name) and its own _PID rather than baton's; when it cannot, it
// gets the master's stream as it is. The master's own fds 1 and 2 never change: a new
// master started by an upgrade gets them, makes its own relay and its workers their own
// journal streams; the old master relays its workers until they have exited.

// outputDrain is how long a master that exits waits for the last output of its workers
// (and of whatever they forked that still holds their stdout or stderr).
const outputDrain = time.Second

// openOutput decides, once, what the workers get as stdout and stderr.
func (m *Master) openOutput() error {
	r, err := relay.New(os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	m.output = r
	if out, errs := r.Relaying(); out || errs {
		m.log.Info("worker output relayed through the master", "stdout", out, "stderr", errs)
	}
	if out, errs := r.Journal(); out || errs {
		m.log.Info("workers log to journal streams of their own", "stdout", out, "stderr", errs)
	}
	return nil
}

// closeOutput relays what the workers wrote last, and closes the relay.
func (m *Master) closeOutput() {
	if err := m.output.Close(outputDrain); err != nil {
		m.log.Warn("worker output cut", "err", err)
	}
}
