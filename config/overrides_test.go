package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const overFile = `[[listen]]
name = "http"
address = "/run/http.sock"
mode = "0660"

[[listen]]
name = "admin"
address = "127.0.0.1:9000"

[worker]
command = ["/usr/bin/app"]
count = 4
`

func TestApply(t *testing.T) {
	c, err := Parse(testPath, []byte(overFile))
	if err != nil {
		t.Fatal(err)
	}
	o := Overrides{
		Listen:  []string{"http=127.0.0.1:8080", "metrics=tcp6:[::1]:9090"},
		Workers: 2,
		PIDFile: "/run/baton.pid",
		Control: "@baton-web",
		Command: []string{"/usr/bin/app2", "--fast"},
		Ready:   ReadyStarted,
		Commit:  CommitManual,
	}
	if err := o.Apply(c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	wantListeners := []Listener{
		{Name: "http", Network: "tcp", Address: "127.0.0.1:8080"}, // replaced, mode gone with it
		{Name: "admin", Network: "tcp", Address: "127.0.0.1:9000"},
		{Name: "metrics", Network: "tcp6", Address: "[::1]:9090"},
	}
	got := strip(c)
	if !reflect.DeepEqual(got.Listeners, wantListeners) {
		t.Errorf("Listeners = %+v, want %+v", got.Listeners, wantListeners)
	}
	if c.Worker.Count != 2 || c.PIDFile != "/run/baton.pid" || c.Worker.Ready != ReadyStarted || c.Upgrade.Commit != CommitManual || c.ControlSocket != "@baton-web" {
		t.Errorf("got count %d pidfile %q ready %q commit %q control %q", c.Worker.Count, c.PIDFile, c.Worker.Ready, c.Upgrade.Commit, c.ControlSocket)
	}
	if !reflect.DeepEqual(c.Worker.Command, o.Command) {
		t.Errorf("Command = %q, want %q", c.Worker.Command, o.Command)
	}
	o.Command[0] = "changed"
	if c.Worker.Command[0] != "/usr/bin/app2" {
		t.Error("Apply shares the Command slice with Overrides")
	}
}

func TestApplyKeepsZeroFields(t *testing.T) {
	c, err := Parse(testPath, []byte(overFile))
	if err != nil {
		t.Fatal(err)
	}
	before := strip(c)
	if err := (Overrides{}).Apply(c); err != nil {
		t.Fatal(err)
	}
	if got := strip(c); !reflect.DeepEqual(got, before) {
		t.Errorf("empty Overrides changed the config:\n got %+v\nwant %+v", got, before)
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Overrides
		want string
	}{
		{"bad address", Overrides{Listen: []string{"http=bad"}},
			`--listen "http=bad": address must be host:port, such as 127.0.0.1:8080 or [::1]:8080 (missing port in address in "bad")`},
		{"no name", Overrides{Listen: []string{"127.0.0.1:80"}},
			`--listen "127.0.0.1:80": want name=address, such as http=127.0.0.1:8080`},
		{"same name twice", Overrides{Listen: []string{"a=:1", "a=:2"}},
			`--listen "a=:2": name "a" already given by --listen "a=:1"`},
		{"two errors", Overrides{Listen: []string{"a", "b=/"}},
			"--listen \"a\": want name=address, such as http=127.0.0.1:8080\n--listen \"b=/\": unix socket path \"/\" names a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(overFile))
			if err != nil {
				t.Fatal(err)
			}
			before := strip(c)
			tt.o.Workers = 7
			err = tt.o.Apply(c)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Apply:\n got %v\nwant %s", err, tt.want)
			}
			if got := strip(c); !reflect.DeepEqual(got, before) {
				t.Errorf("failed Apply changed the config")
			}
		})
	}
}

// TestApplyValidateNamesFlags checks that Validate blames the flag, not the
// file line, for a value the flag set.
func TestApplyValidateNamesFlags(t *testing.T) {
	tests := []struct {
		name string
		o    Overrides
		want string
	}{
		{"workers", Overrides{Workers: -1}, "--workers: must be from 1 to 1024 (got -1)"},
		{"workers too many", Overrides{Workers: 5000}, "--workers: must be from 1 to 1024 (got 5000)"},
		{"ready", Overrides{Ready: "soon"}, `--ready: must be "notify" or "started" (got "soon")`},
		{"commit", Overrides{Commit: "now"}, `--commit: must be "auto" or "manual" (got "now")`},
		{"command", Overrides{Command: []string{""}}, "command after --: the program (first element) is empty"},
		{"control", Overrides{Control: "/" + strings.Repeat("c", 107)}, `--control: unix socket address is 108 bytes long, the kernel takes at most 107 (got "/` + strings.Repeat("c", 107) + `")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(overFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.o.Apply(c); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			err = c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestApplyFlagsAlone is `baton run --listen … -- CMD` without a file.
func TestApplyFlagsAlone(t *testing.T) {
	t.Chdir(t.TempDir())
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	o := Overrides{Listen: []string{"http=127.0.0.1:8080"}, PIDFile: "b.pid", Control: "c.sock", Command: []string{"hello"}}
	if err := o.Apply(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if want := filepath.Join(wd, "b.pid"); c.PIDFile != want {
		t.Errorf("PIDFile = %q, want %q", c.PIDFile, want)
	}
	if want := filepath.Join(wd, "c.sock"); c.ControlSocket != want {
		t.Errorf("ControlSocket = %q, want %q", c.ControlSocket, want)
	}
	if c.Path != "" {
		t.Errorf("Path = %q, want empty", c.Path)
	}

	c = Default()
	if err := (Overrides{Listen: []string{"http=:80"}}).Apply(c); err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "worker.command: required") {
		t.Errorf("Validate without command: %v", err)
	}
}
