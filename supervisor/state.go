//go:build linux

package supervisor

import "fmt"

// role is where a master stands in the service's life. It changes in one place, become,
// and only along the arrows of transitions (STATES.md draws them).
type role int

const (
	// roleStarting: in charge, its first pool not ready yet (a first generation, or a new
	// master whose old master went away before it was ready).
	roleStarting role = iota
	// roleServing: in charge and ready; reloads happen here.
	roleServing
	// roleUpgrading: old master; a new master runs, not ready yet (upgrade.timeout armed).
	roleUpgrading
	// roleSoaking: old master; the new master is ready; the commit waits for the soak time
	// (commit = "auto") or for QUIT (commit = "manual").
	roleSoaking
	// roleCommitting: old master; its workers drain before the hand-over.
	roleCommitting
	// roleHandingOver: old master; MAINPID= sent (or, off systemd, about to say commit):
	// from here on the new master is never signalled by this one.
	roleHandingOver
	// roleRollingBack: old master; its workers run again and the new master was asked to
	// exit (baton rollback); when it has, the old master serves on alone.
	roleRollingBack
	// roleJoining: new master, before its first pool is ready; the old master is in charge.
	roleJoining
	// roleAwaitingCommit: new master, ready, told the old master so; waits for its commit.
	roleAwaitingCommit
	// roleStopping: graceful (QUIT, baton stop) or fast (TERM, INT) stop; see Master.fast.
	roleStopping
	// roleExited: the loop ends.
	roleExited
)

var roleNames = [...]string{
	roleStarting: "starting", roleServing: "serving", roleUpgrading: "upgrading",
	roleSoaking: "soaking", roleCommitting: "committing", roleHandingOver: "handing-over",
	roleRollingBack: "rolling-back",
	roleJoining:     "joining", roleAwaitingCommit: "awaiting-commit", roleStopping: "stopping",
	roleExited: "exited",
}

func (r role) String() string {
	if r >= 0 && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// transitions are the arrows of the master's state machine: from a role, the roles it may
// become. Everything else is a bug, which become reports.
var transitions = map[role][]role{
	roleStarting:       {roleServing, roleStopping, roleExited},
	roleServing:        {roleUpgrading, roleStopping},
	roleUpgrading:      {roleSoaking, roleRollingBack, roleServing, roleStopping},
	roleSoaking:        {roleCommitting, roleRollingBack, roleServing, roleStopping},
	roleCommitting:     {roleHandingOver, roleRollingBack, roleServing, roleStopping},
	roleHandingOver:    {roleExited, roleRollingBack},
	roleRollingBack:    {roleServing, roleStopping},
	roleJoining:        {roleAwaitingCommit, roleStarting, roleStopping, roleExited},
	roleAwaitingCommit: {roleServing, roleStopping},
	roleStopping:       {roleExited},
}

func allowed(from, to role) bool {
	for _, r := range transitions[from] {
		if r == to {
			return true
		}
	}
	return false
}

// inCharge reports whether a master in role r is the service's main process: it holds the
// pid file, speaks to systemd and serves the control socket. A stopping master is in charge
// unless it is a new master that was never committed (Master.parent says so).
func (r role) inCharge() bool {
	switch r {
	case roleStarting, roleServing, roleUpgrading, roleSoaking, roleCommitting, roleRollingBack, roleStopping:
		return true
	}
	return false
}

// upgrading reports whether r is an old master's role while its upgrade is in flight.
func (r role) upgrading() bool {
	return r == roleUpgrading || r == roleSoaking || r == roleCommitting || r == roleHandingOver || r == roleRollingBack
}

// become moves the master to role r. It is the only place a role changes.
func (m *Master) become(r role, why string) {
	if !allowed(m.role, r) {
		// A transition nobody drew: say so loudly, and go on (the invariants tests catch it).
		m.log.Error("BUG: state transition not allowed", "from", m.role.String(), "to", r.String(), "why", why)
		if m.strict {
			panic(fmt.Sprintf("supervisor: transition %s -> %s (%s) not allowed", m.role, r, why))
		}
	}
	m.log.Debug("state", "from", m.role.String(), "to", r.String(), "why", why)
	m.role = r
}
