//go:build linux

package fdstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childReport is what activationChild prints as JSON.
type childReport struct {
	Err          string
	ErrKind      string // "env" (ErrActivationEnv), "ebadf" or "other"
	Listeners    []childListener
	Env          map[string]string // LISTEN_* still set after Activation
	Fd3StillOpen bool
}

type childListener struct {
	Name, Network, Addr string
	Source              Source
	Cloexec             bool
}

// activationChild runs in a re-executed test binary with listeners at fd 3
// and up. os/exec cannot set LISTEN_PID to the child's pid, so with
// FDSTORE_TEST_FIX_PID=1 the child sets it itself, as a wrapper would.
func activationChild() int {
	if os.Getenv("FDSTORE_TEST_FIX_PID") == "1" {
		os.Setenv(envPID, strconv.Itoa(os.Getpid()))
	}
	ls, err := Activation(os.Getenv("FDSTORE_TEST_KEEP_ENV") != "1")
	var r childReport
	if err != nil {
		r.Err = err.Error()
		switch {
		case errors.Is(err, ErrActivationEnv):
			r.ErrKind = "env"
		case errors.Is(err, unix.EBADF):
			r.ErrKind = "ebadf"
		default:
			r.ErrKind = "other"
		}
	}
	for _, l := range ls {
		flags, ferr := unix.FcntlInt(l.File.Fd(), unix.F_GETFD, 0)
		r.Listeners = append(r.Listeners, childListener{
			Name: l.Name, Network: l.Network, Addr: l.Addr, Source: l.Source,
			Cloexec: ferr == nil && flags&unix.FD_CLOEXEC != 0,
		})
	}
	r.Env = map[string]string{}
	for _, k := range []string{envPID, envFDs, envNames} {
		if v, ok := os.LookupEnv(k); ok {
			r.Env[k] = v
		}
	}
	_, ferr := unix.FcntlInt(3, unix.F_GETFD, 0)
	r.Fd3StillOpen = ferr == nil
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

func TestActivation(t *testing.T) {
	dir := t.TempDir()
	web1 := mustOpen(t, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0"})
	web2 := mustOpen(t, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0"})
	admin := mustOpen(t, Spec{Name: "admin", Network: "unix", Address: filepath.Join(dir, "admin.sock")})
	dns := mustOpen(t, Spec{Name: "dns", Network: "udp", Address: "127.0.0.1:0"})
	all := []*Listener{web1, web2, admin, dns}

	want := func(names ...string) []childListener {
		var out []childListener
		for i, name := range names {
			out = append(out, childListener{Name: name, Network: all[i].Network, Addr: all[i].Addr, Source: Activated, Cloexec: true})
		}
		return out
	}
	tests := []struct {
		name    string
		files   []*Listener
		env     []string
		fixPID  bool
		keepEnv bool
		want    []childListener
		wantErr string // "" or the child's ErrKind
		wantEnv map[string]string
	}{
		{
			name:   "named fds, one name twice",
			files:  all,
			env:    []string{"LISTEN_FDS=4", "LISTEN_FDNAMES=web:web:admin:dns"},
			fixPID: true,
			want:   want("web", "web", "admin", "dns"),
		},
		{
			name:   "no LISTEN_FDNAMES gives unknown",
			files:  all[:2],
			env:    []string{"LISTEN_FDS=2"},
			fixPID: true,
			want:   want("unknown", "unknown"),
		},
		{
			name:  "another process's LISTEN_PID",
			files: all[:1],
			env:   []string{"LISTEN_PID=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=web"},
		},
		{
			name:    "env kept when asked",
			files:   all[:1],
			env:     []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=web"},
			fixPID:  true,
			keepEnv: true,
			want:    want("web"),
			wantEnv: map[string]string{envFDs: "1", envNames: "web"}, // LISTEN_PID checked apart
		},
		{
			name:    "name count mismatch",
			files:   all[:2],
			env:     []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=web"},
			fixPID:  true,
			wantErr: "env",
		},
		{
			name:    "fd not open",
			files:   all[:1],
			env:     []string{"LISTEN_FDS=1000"},
			fixPID:  true,
			wantErr: "ebadf",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(environWithout("LISTEN_", "FDSTORE_TEST_"), "FDSTORE_TEST_CHILD=activation")
			cmd.Env = append(cmd.Env, tt.env...)
			if tt.fixPID {
				cmd.Env = append(cmd.Env, "FDSTORE_TEST_FIX_PID=1")
			}
			if tt.keepEnv {
				cmd.Env = append(cmd.Env, "FDSTORE_TEST_KEEP_ENV=1")
			}
			cmd.ExtraFiles = Files(tt.files)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, stderr.String())
			}
			var r childReport
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if r.ErrKind != tt.wantErr {
				t.Fatalf("error: got %q (%s), want kind %q", r.ErrKind, r.Err, tt.wantErr)
			}
			if r.Err != "" && !r.Fd3StillOpen {
				t.Error("Activation closed fd 3 on error")
			}
			if !reflect.DeepEqual(r.Listeners, tt.want) {
				t.Errorf("listeners:\ngot  %+v\nwant %+v", r.Listeners, tt.want)
			}
			if tt.keepEnv {
				if r.Env[envPID] == "" {
					t.Error("LISTEN_PID was removed although unsetEnv was false")
				}
				delete(r.Env, envPID)
			}
			if !maps.Equal(r.Env, tt.wantEnv) {
				t.Errorf("env after Activation: got %v, want %v", r.Env, tt.wantEnv)
			}
		})
	}
}

// environWithout is os.Environ without variables starting with any prefix.
func environWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// TestActivationInProcess covers the cases that return before any fd is
// touched, so they are safe in the test process itself.
func TestActivationInProcess(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"nothing set", map[string]string{}, false},
		{"other pid", map[string]string{envPID: "1", envFDs: "3"}, false},
		{"no LISTEN_FDS", map[string]string{envPID: pid}, false},
		{"zero fds", map[string]string{envPID: pid, envFDs: "0"}, false},
		{"bad pid", map[string]string{envPID: "x", envFDs: "1"}, true},
		{"bad count", map[string]string{envPID: pid, envFDs: "-1"}, true},
		{"too few names", map[string]string{envPID: pid, envFDs: "2", envNames: "a"}, true},
		{"invalid name", map[string]string{envPID: pid, envFDs: "1", envNames: "a\x01"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{envPID, envFDs, envNames} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ls, err := Activation(true)
			if len(ls) != 0 {
				t.Fatalf("got %d listeners, want none", len(ls))
			}
			if tt.wantErr != (err != nil) || err != nil && !errors.Is(err, ErrActivationEnv) {
				t.Errorf("error: got %v, want error %v wrapping ErrActivationEnv", err, tt.wantErr)
			}
			for _, k := range []string{envPID, envFDs, envNames} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("%s=%q still set", k, v)
				}
			}
		})
	}
}

func TestParseListenEnv(t *testing.T) {
	const pid = 42
	tests := []struct {
		name    string
		env     listenEnv
		want    []string
		wantErr bool
	}{
		{"unset", listenEnv{}, nil, false},
		{"for us, named", listenEnv{pid: "42", pidSet: true, fds: "3", names: "a:b:b", namesSet: true}, []string{"a", "b", "b"}, false},
		{"for us, unnamed", listenEnv{pid: "42", pidSet: true, fds: "2"}, []string{"unknown", "unknown"}, false},
		{"systemd-valid name with space", listenEnv{pid: "42", pidSet: true, fds: "1", names: "my sock", namesSet: true}, []string{"my sock"}, false},
		{"other pid", listenEnv{pid: "41", pidSet: true, fds: "3"}, nil, false},
		{"empty pid", listenEnv{pid: "", pidSet: true, fds: "3"}, nil, true},
		{"pid zero", listenEnv{pid: "0", pidSet: true, fds: "3"}, nil, true},
		{"count not a number", listenEnv{pid: "42", pidSet: true, fds: "3x"}, nil, true},
		{"count too big", listenEnv{pid: "42", pidSet: true, fds: fmt.Sprint(maxListenFDs + 1)}, nil, true},
		{"too many names", listenEnv{pid: "42", pidSet: true, fds: "1", names: "a:b", namesSet: true}, nil, true},
		{"empty names for one fd", listenEnv{pid: "42", pidSet: true, fds: "1", names: "", namesSet: true}, nil, true},
		{"empty name in the middle", listenEnv{pid: "42", pidSet: true, fds: "3", names: "a::b", namesSet: true}, nil, true},
		{"names but zero fds", listenEnv{pid: "42", pidSet: true, fds: "0", names: "a", namesSet: true}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListenEnv(tt.env, pid)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrActivationEnv) {
				t.Errorf("error %v does not wrap ErrActivationEnv", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("names: got %q, want %q", got, tt.want)
			}
		})
	}
}
