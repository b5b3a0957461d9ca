//go:build linux

package fdstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	// open returns a real listener relabelled src, closed when t ends.
	open := func(t *testing.T, src Source, s Spec) *Listener {
		l := mustOpen(t, s)
		l.Source = src
		return l
	}
	tcp := func(name, addr string) Spec { return Spec{Name: name, Network: "tcp", Address: addr} }

	tests := []struct {
		name string
		// setup returns the specs and have; use and unused list the
		// expected result: "haveN" is have[N] itself, "new" a listener
		// Resolve opened for the spec of that position in use.
		setup  func(t *testing.T, dir string) ([]Spec, []*Listener)
		use    []string
		unused []string
		check  func(t *testing.T, dir string)
	}{
		{
			name: "reuse by name and address",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				web := open(t, Opened, tcp("web", "127.0.0.1:0"))
				return []Spec{tcp("web", web.Addr)}, []*Listener{web}
			},
			use: []string{"have0"},
		},
		{
			name: "reuse with port 0 in the spec",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				return []Spec{tcp("web", "127.0.0.1:0")}, []*Listener{open(t, Opened, tcp("web", "127.0.0.1:0"))}
			},
			use: []string{"have0"},
		},
		{
			name: "address changed: new open, old unused",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				return []Spec{tcp("web", "127.0.0.2:0")}, []*Listener{open(t, Opened, tcp("web", "127.0.0.1:0"))}
			},
			use:    []string{"new"},
			unused: []string{"have0"},
		},
		{
			name: "network changed: new open, old unused",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				unix := Spec{Name: "web", Network: "unix", Address: filepath.Join(dir, "web.sock")}
				return []Spec{unix}, []*Listener{open(t, Opened, tcp("web", "127.0.0.1:0"))}
			},
			use:    []string{"new"},
			unused: []string{"have0"},
		},
		{
			name: "same address, other name: not reused",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				return []Spec{tcp("www", "127.0.0.1:0")}, []*Listener{open(t, Opened, tcp("web", "127.0.0.1:0"))}
			},
			use:    []string{"new"},
			unused: []string{"have0"},
		},
		{
			name: "activation wins over the config address",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				act := open(t, Activated, Spec{Name: "web", Network: "unix", Address: filepath.Join(dir, "act.sock")})
				return []Spec{tcp("web", "127.0.0.1:0")}, []*Listener{act}
			},
			use: []string{"have0"},
		},
		{
			name: "activation wins with all its fds, stored copy unused",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				return []Spec{tcp("web", "127.0.0.1:0")}, []*Listener{
					open(t, Activated, tcp("web", "127.0.0.1:0")),
					open(t, Opened, tcp("web", "127.0.0.1:0")),
					open(t, Activated, tcp("web", "127.0.0.1:0")),
				}
			},
			use:    []string{"have0", "have2"},
			unused: []string{"have1"},
		},
		{
			name: "unlisted activation kept after the specs",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				return []Spec{tcp("web", "127.0.0.1:0")}, []*Listener{
					open(t, Activated, tcp("admin", "127.0.0.1:0")),
					open(t, Opened, tcp("old", "127.0.0.1:0")),
					open(t, Activated, tcp("metrics", "127.0.0.1:0")),
				}
			},
			use:    []string{"new", "have0", "have2"},
			unused: []string{"have1"},
		},
		{
			name: "one name, two addresses, in spec order",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				a := open(t, Opened, tcp("web", "127.0.0.1:0"))
				b := open(t, Opened, tcp("web", "127.0.0.1:0"))
				return []Spec{tcp("web", b.Addr), tcp("web", a.Addr), tcp("web", "127.0.0.1:0")}, []*Listener{a, b}
			},
			use: []string{"have1", "have0", "new"},
		},
		{
			name: "no specs: opened unused, activation used",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				return nil, []*Listener{open(t, Opened, tcp("old", "127.0.0.1:0")), open(t, Activated, tcp("sock", "127.0.0.1:0"))}
			},
			use:    []string{"have1"},
			unused: []string{"have0"},
		},
		{
			name: "reused unix socket gets the new mode",
			setup: func(t *testing.T, dir string) ([]Spec, []*Listener) {
				s := Spec{Name: "admin", Network: "unix", Address: filepath.Join(dir, "admin.sock"), Mode: 0o600}
				l := open(t, Opened, s)
				s.Mode = 0o640
				return []Spec{s}, []*Listener{l}
			},
			use: []string{"have0"},
			check: func(t *testing.T, dir string) {
				fi, err := os.Stat(filepath.Join(dir, "admin.sock"))
				if err != nil || fi.Mode().Perm() != 0o640 {
					t.Errorf("mode after reuse: got %v (%v), want 0640", fi.Mode(), err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			specs, have := tt.setup(t, dir)
			use, unused, err := Resolve(specs, have)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			t.Cleanup(func() { closeAll(use); closeAll(unused) })
			if got := labels(t, use, have, specs); !slices.Equal(got, tt.use) {
				t.Errorf("use: got %v, want %v", got, tt.use)
			}
			if got := labels(t, unused, have, nil); !slices.Equal(got, tt.unused) {
				t.Errorf("unused: got %v, want %v", got, tt.unused)
			}
			if tt.check != nil {
				tt.check(t, dir)
			}
		})
	}
}

// labels names each listener of ls "haveN" if it is have[N], else "new";
// a new listener must be Opened and match specs[i], i its position in ls.
func labels(t *testing.T, ls, have []*Listener, specs []Spec) []string {
	t.Helper()
	var out []string
	for i, l := range ls {
		if n := slices.Index(have, l); n >= 0 {
			out = append(out, fmt.Sprintf("have%d", n))
			continue
		}
		out = append(out, "new")
		if l.Source != Opened || i >= len(specs) || !l.Matches(specs[i]) {
			t.Errorf("new listener %v does not stand for spec %d", l, i)
		}
	}
	return out
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		specs   []Spec
		wantErr error
	}{
		{"open fails after another open", []Spec{
			{Name: "a", Network: "tcp", Address: "127.0.0.1:0"},
			{Name: "b", Network: "unix", Address: filepath.Join(dir, "b.sock")},
			{Name: "c", Network: "unix", Address: blocker},
		}, ErrNotSocket},
		{"invalid spec", []Spec{
			{Name: "a", Network: "tcp", Address: "127.0.0.1:0"},
			{Name: "b:c", Network: "tcp", Address: "127.0.0.1:0"},
		}, ErrInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := []*Listener{
				mustOpen(t, Spec{Name: "old", Network: "tcp", Address: "127.0.0.1:0"}),
				devNull(t, "sock", Activated),
			}
			t.Cleanup(func() { closeAll(have) })
			base := fdCount(t)
			use, unused, err := Resolve(tt.specs, have)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve: got %v, want %v", err, tt.wantErr)
			}
			if use != nil || unused != nil {
				t.Errorf("Resolve returned listeners with an error: %v, %v", use, unused)
			}
			checkNoLeak(t, base)
			if _, err := os.Lstat(filepath.Join(dir, "b.sock")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file of a closed listener left behind (%v)", err)
			}
			for _, l := range have {
				if !cloexec(t, l.File.Fd()) { // F_GETFD fails on a closed fd
					t.Errorf("%v lost close-on-exec", l)
				}
			}
		})
	}

	t.Run("listener without source", func(t *testing.T) {
		l := devNull(t, "x", 0)
		defer l.Close()
		if _, _, err := Resolve(nil, []*Listener{l}); err == nil {
			t.Error("Resolve accepted a listener without a source")
		}
	})
}
