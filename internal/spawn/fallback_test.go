//go:build linux && (spawn_fallback || !(amd64 || arm64 || riscv64 || loong64 || ppc64le))

package spawn

import (
	"errors"
	"os"
	"os/exec"
	"reflect"
	"syscall"
	"testing"
	"unsafe"
)

func TestPlanRoundTrip(t *testing.T) {
	p := &plan{
		path: "/bin/x\xff", args: []string{"x", "", "a b"}, env: []string{"A=1", "B=\n"}, dir: "/tmp",
		pidVars: []string{listenPIDPrefix, watchdogPIDPrefix}, ignore: []uint64{12, 28},
		cred: true, uid: 65534, gid: 65534, groups: []uint64{1, 2}, noSetGroups: true,
		pdeathsig: 15, ppid: 1 << 40, nofile: true, nofileCur: 1024, nofileMax: ^uint64(0),
		journal: true, journalSocket: "/run/j", journalHeader: "id\n\n6\n", journalStdout: true,
	}
	b := p.encode()
	got, err := decodePlan(b)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("decodePlan(encode(p)) = %+v, %v; want %+v", got, err, p)
	}
	for i := range b {
		if _, err := decodePlan(b[:i]); err == nil {
			t.Errorf("a plan cut at %d of %d bytes decodes", i, len(b))
		}
	}
	if _, err := decodePlan(append(b, 0)); err == nil {
		t.Error("a plan with a byte more decodes")
	}
}

// TestTrampolineWithoutPlan: whoever starts the binary as a trampoline without a plan gets
// exit status 127, nothing on stdout or stderr, and a failure record where it can write.
func TestTrampolineWithoutPlan(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("no fd", func(t *testing.T) {
		cmd := &exec.Cmd{Path: self, Args: []string{trampolineArg0, "9"}, Env: []string{"GORACE=atexit_sleep_ms=0"}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 127 || len(out) != 0 {
			t.Errorf("got %v, output %q; want exit status 127 and no output", err, out)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		sp, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(sp[0])
		theirs := os.NewFile(uintptr(sp[1]), "trampoline")
		cmd := &exec.Cmd{Path: self, Args: []string{trampolineArg0, "3"}, ExtraFiles: []*os.File{theirs}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		theirs.Close()
		sendAll(sp[0], []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
		syscall.Shutdown(sp[0], syscall.SHUT_WR)
		var f failure
		n, err := readFull(sp[0], (*[unsafe.Sizeof(f)]byte)(unsafe.Pointer(&f))[:])
		werr := cmd.Wait()
		if err != nil || n != int(unsafe.Sizeof(f)) || f.step != stepTrampoline || syscall.Errno(f.errno) != syscall.EINVAL {
			t.Errorf("report %+v (%d bytes, %v), want step %d, EINVAL", f, n, err, stepTrampoline)
		}
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.ExitCode() != 127 {
			t.Errorf("exit: %v, want status 127", werr)
		}
	})
}
