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
// into pipes of its own that the master relays (internal/relay). A file, a terminal,
// /dev/null or the journal stream of systemd are given to the workers as they are. The
// master's own fds 1 and 2 never change: a new master started by an upgrade gets them, and
// makes its own relay; the old master relays its workers until they have exited.

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
	return nil
}

// closeOutput relays what the workers wrote last, and closes the relay.
func (m *Master) closeOutput() {
	if err := m.output.Close(outputDrain); err != nil {
		m.log.Warn("worker output cut", "err", err)
	}
}
