//go:build linux

package supervisor

import "time"

// What anyone may cause by the thousand (datagrams on the notify socket, connections to
// the control socket) is logged at most once per logEvery, with the count of what was
// left unsaid.
const logEvery = 10 * time.Second

type rateLimits struct {
	notifyBad      limited
	notifyStranger limited
	controlRefused limited
	progressBad    limited
	journalStream  limited // a worker that could not connect its own journal stream
	workerErrno    limited // a worker's ERRNO= outside probation
	watchdogSaid   limited // what a worker said of its watchdog or start timeout: a change, a refusal, a cap
}

// limited is one rate-limited log line. The loop owns it.
type limited struct {
	last       time.Time
	suppressed int
}

func (l *limited) log(m *Master, msg string, args ...any) {
	now := m.sys.now()
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		args = append(args, "suppressed", l.suppressed)
	}
	l.last, l.suppressed = now, 0
	m.log.Warn(msg, args...)
}
