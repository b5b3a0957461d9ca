//go:build linux

package supervisor

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSigset: the kernel blocks exactly the signals sigset names, a real-time one (past the
// first 32-bit word) included.
func TestSigset(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, sigset(syscall.SIGUSR2, 35), &old); err != nil {
		t.Fatal(err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigBlk:"); ok {
			got, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if want := uint64(1)<<(syscall.SIGUSR2-1) | 1<<(35-1); err != nil || got != want {
				t.Fatalf("SigBlk = %s (%v), want %016x", strings.TrimSpace(v), err, want)
			}
			return
		}
	}
	t.Fatal("no SigBlk in /proc/thread-self/status")
}
