//go:build linux

package supervisor

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// forkSignals are the signals a fork must not let through before the child has set up
// its own handling. `systemctl kill -s USR2 UNIT` signals every process of the cgroup and
// reads the cgroup again until no new process shows up (FACTS §d), so it also reaches the
// new master and the workers forked in reaction to that very USR2; between the fork and
// their own signal set-up, the default action of USR2 (and of WINCH, which is harmless)
// would kill them.
var forkSignals = []syscall.Signal{syscall.SIGUSR2, syscall.SIGWINCH}

// sigset is the set of sigs. Sigset_t's words are 64 bits wide on 64-bit architectures
// and 32 on the others.
func sigset(sigs ...syscall.Signal) *unix.Sigset_t {
	var s unix.Sigset_t
	const bits = uint(8 * unsafe.Sizeof(s.Val[0]))
	for _, sig := range sigs {
		n := uint(sig) - 1
		s.Val[n/bits] |= 1 << (n % bits)
	}
	return &s
}

// withForkSignalsBlocked runs fork on a locked OS thread that has forkSignals blocked, so
// the child starts with them blocked (and pending, if they arrive): a new master unblocks
// them when it subscribes to them; a worker's child sets them to SIG_IGN (which discards
// one pending) and clears its mask before it execs (internal/spawn).
func withForkSignalsBlocked(fork func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, sigset(forkSignals...), &old); err != nil {
		return fork()
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return fork()
}
