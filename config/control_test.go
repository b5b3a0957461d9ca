package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseControlSocket gives control_socket valid and invalid values; an
// invalid one must be reported at the line of the key.
func TestParseControlSocket(t *testing.T) {
	long := "/run/" + strings.Repeat("x", maxUnixPath-len("/run/")) // exactly 107 bytes
	tests := []struct {
		name string
		toml string
		want string // ControlSocket after Parse, when err is ""
		err  string // the whole error of Parse
	}{
		{name: "absolute", toml: "control_socket = \"/run/baton/web/control.sock\"\n",
			want: "/run/baton/web/control.sock"},
		{name: "relative to the file", toml: "control_socket = \"run/../ctl.sock\"\n",
			want: "/etc/baton/ctl.sock"},
		{name: "abstract stays as is", toml: "control_socket = \"@baton/web/../ctl\"\n",
			want: "@baton/web/../ctl"},
		{name: "empty is the default", toml: "control_socket = \"\"\n",
			want: ""},
		{name: "107 bytes", toml: "control_socket = \"" + long + "\"\n",
			want: long},
		{name: "108 bytes", toml: "pidfile = \"/run/b.pid\"\n\ncontrol_socket = \"" + long + "y\"\n",
			err: testPath + ":3: control_socket: unix socket address is 108 bytes long, the kernel takes at most 107 (got \"" + long + "y\")"},
		{name: "abstract 108 bytes", toml: "\ncontrol_socket = \"@" + strings.Repeat("a", 107) + "\"\n",
			err: testPath + ":2: control_socket: unix socket address is 108 bytes long, the kernel takes at most 107 (got \"@" + strings.Repeat("a", 107) + "\")"},
		{name: "relative too long once absolute", toml: "control_socket = \"" + strings.Repeat("r", 100) + "\"\n",
			err: testPath + ":1: control_socket: unix socket address is 111 bytes long, the kernel takes at most 107 (got \"/etc/baton/" + strings.Repeat("r", 100) + "\")"},
		{name: "abstract empty", toml: "control_socket = \"@\"\n",
			err: testPath + ":1: control_socket: abstract socket name after @ is empty"},
		{name: "NUL", toml: "control_socket = \"/run/a\\u0000b\"\n",
			err: testPath + ":1: control_socket: unix socket address \"/run/a\\x00b\" contains a NUL byte"},
		{name: "integer", toml: "\n\ncontrol_socket = 1\n",
			err: testPath + ":3: control_socket: must be a string (got integer)"},
		{name: "typo", toml: "control_sockt = \"/run/c.sock\"\n",
			err: testPath + ":1: control_sockt: unknown key (did you mean \"control_socket\"?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(tt.toml))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Parse error:\n got %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.ControlSocket != tt.want {
				t.Errorf("ControlSocket = %q, want %q", c.ControlSocket, tt.want)
			}
			roundTrip(t, c)
		})
	}
}

// TestValidateControlSocketLine changes a parsed ControlSocket and checks
// that Validate still names the line of the key.
func TestValidateControlSocketLine(t *testing.T) {
	c, err := Parse(testPath, []byte("[worker]\ncommand = [\"x\"]\n\n[upgrade]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.ControlSocket = "rel.sock"
	want := testPath + `: control_socket: unix socket address must be an absolute path such as /run/app.sock or an abstract name such as @app (got "rel.sock")`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate without the key in the file:\n got %v\nwant %s", err, want)
	}

	c, err = Parse(testPath, []byte("pidfile = \"/run/a.pid\"\ncontrol_socket = \"/run/c.sock\"\n[worker]\ncommand = [\"x\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.ControlSocket = "/run/dir/"
	want = testPath + `:2: control_socket: unix socket path "/run/dir/" names a directory`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n got %v\nwant %s", err, want)
	}
}

// TestApplyControl is --control over a file that sets control_socket.
func TestApplyControl(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	const file = "control_socket = \"/run/file.sock\"\n[worker]\ncommand = [\"x\"]\n"
	long := "/" + strings.Repeat("z", maxUnixPath)
	tests := []struct {
		name    string
		control string
		want    string // ControlSocket after Apply, when err is ""
		err     string // the whole error of Validate after Apply
	}{
		{name: "none keeps the file's", control: "", want: "/run/file.sock"},
		{name: "absolute", control: "/run/flag//c.sock", want: "/run/flag/c.sock"},
		{name: "relative to the current directory", control: "run/c.sock", want: filepath.Join(wd, "run/c.sock")},
		{name: "abstract", control: "@baton-web", want: "@baton-web"},
		{name: "too long", control: long,
			err: `--control: unix socket address is 108 bytes long, the kernel takes at most 107 (got "` + long + `")`},
		{name: "abstract empty", control: "@", err: "--control: abstract socket name after @ is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(file))
			if err != nil {
				t.Fatal(err)
			}
			if err := (Overrides{Control: tt.control}).Apply(c); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			err = c.Validate()
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Validate:\n got %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if c.ControlSocket != tt.want {
				t.Errorf("ControlSocket = %q, want %q", c.ControlSocket, tt.want)
			}
		})
	}
}

func TestControlPath(t *testing.T) {
	tests := []struct {
		name    string
		control string // Config.ControlSocket
		runtime string // $RUNTIME_DIRECTORY; "-" = unset
		want    string
	}{
		{"set wins", "/run/c.sock", "/run/baton/web", "/run/c.sock"},
		{"abstract wins", "@ctl", "/run/baton/web", "@ctl"},
		{"runtime directory", "", "/run/baton/web", "/run/baton/web/control.sock"},
		{"first runtime directory", "", "/run/baton/web:/run/other", "/run/baton/web/control.sock"},
		{"no runtime directory", "", "-", ""},
		{"empty runtime directory", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.runtime == "-" {
				t.Setenv("RUNTIME_DIRECTORY", "") // restored after the test
				os.Unsetenv("RUNTIME_DIRECTORY")
			} else {
				t.Setenv("RUNTIME_DIRECTORY", tt.runtime)
			}
			c := Default()
			c.ControlSocket = tt.control
			if got := c.ControlPath(); got != tt.want {
				t.Errorf("ControlPath() = %q, want %q", got, tt.want)
			}
		})
	}
}
