package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that it takes exactly the TOML
// go-toml takes and reports the rest in go-toml's words at go-toml's line,
// that every error it returns is an *Error naming the file and a line inside
// it, and that a config which parses and validates survives Encode and Parse
// unchanged.
func FuzzParse(f *testing.F) {
	// The reference file, every key with a comment.
	f.Add([]byte(Example()))
	// Empty file: all defaults.
	f.Add([]byte(""))
	// Every key set, listeners of each kind.
	f.Add([]byte(`pidfile = "baton.pid"
control_socket = "run/control.sock"
[[listen]]
name = "http"
address = "tcp6:[::1]:8080"
backlog = 128
[[listen]]
name = "sock"
address = "/run/a.sock"
mode = "0660"
owner = "www-data"
group = "0"
[worker]
command = ["/bin/app", "-x"]
count = 3
env = { B = "2", A = "1" }
dir = "srv"
user = "app"
group = "app"
ready = "started"
start_timeout = "1s"
stop_signal = "SIGQUIT"
stop_timeout = "2s"
watchdog = "1s"
restart_delay = "10ms"
restart_delay_max = "1s"
log_identifier = "app"
[upgrade]
commit = "manual"
soak = "0s"
timeout = "1m"
`))
	// Inline array of tables and dotted keys.
	f.Add([]byte("listen = [{ name = \"a\", address = \"@abs\" }]\nworker.command = [\"x\"]\nworker.env.K = \"v\"\n"))
	// A host named like a network: Encode must not turn it into a prefix.
	f.Add([]byte("[[listen]]\nname = \"odd\"\nnetwork = \"tcp\"\naddress = \"tcp:udp:80\"\n[worker]\ncommand = [\"x\"]\n"))
	// Metrics on a relative unix path, and on TCP with a path of its own.
	f.Add([]byte("[metrics]\naddress = \"unix:run/m.sock\"\n[worker]\ncommand = [\"x\"]\n"))
	f.Add([]byte("[metrics]\naddress = \"[::1]:9101\"\npath = \"/m\"\n[worker]\ncommand = [\"x\"]\n"))
	// An abstract control socket, kept as written (no path cleaning).
	f.Add([]byte("control_socket = \"@baton/./web//ctl\"\n[worker]\ncommand = [\"x\"]\n"))
	// Strings with escapes Encode must write back.
	f.Add([]byte("[worker]\ncommand = [\"a\\\"b\", 'c\\d', \"\\u00e9\\t\\u007f\"]\n"))
	// Log identifiers: one that would end the journal stream header early, one that
	// is fine, and a program whose base name needs cleaning for the default.
	f.Add([]byte("[worker]\ncommand = [\"x\"]\nlog_identifier = \"x\\n\\n0\"\n"))
	f.Add([]byte("[worker]\ncommand = [\"x\"]\nlog_identifier = \"\u00e9t\u00e9\"\n"))
	f.Add([]byte("[worker]\ncommand = [\"/opt/my app/srv\\t\\u0085x\"]\n"))
	// Unknown keys, wrong types and a syntax error.
	f.Add([]byte("[worker]\ncout = 1\ncount = \"2\"\n"))
	f.Add([]byte("[worker\n"))
	// Table redefinition and array-of-tables conflicts.
	f.Add([]byte("[[listen]]\n[listen.x]\ny = 1\n[worker]\n[worker]\n"))
	f.Add([]byte("listen = []\n[[listen]]\n"))
	// Tables made by headers, longer headers, dotted keys and inline tables:
	// TOML's rules on what may define them again.
	f.Add([]byte("[a.b]\n[a]\nc.d = 1\ne = {f.g = 1, h = [{i = 1}]}\n[[j]]\n[j.k]\n[[j]]\n[j.k]\n[a.c.l]\n"))
	// Scalars the parser scans and go-toml decodes.
	f.Add([]byte("a = [0x7fffffffffffffff, 9_223_372_036_854_775_808]\nb = 1979-02-29\nc = 1e400\n"))

	const path = "/etc/baton/fuzz.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTreeMatchesGoTOML(t, path, data)
		c, err := Parse(path, data)
		if err != nil {
			checkErrors(t, err, data)
			return
		}
		if c.Validate() != nil {
			return
		}
		// What goes into a journal stream header is one valid identifier line.
		if id := c.Worker.JournalIdentifier(); id != "" || len(c.Worker.Command) > 0 {
			if err := checkLogIdentifier(id); err != nil {
				t.Fatalf("JournalIdentifier() = %q: %v", id, err)
			}
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode of a valid parsed config: %v", err)
		}
		back, err := Parse(path, out)
		if err != nil {
			t.Fatalf("Parse(Encode()): %v\ninput:\n%q\nencoded:\n%s", err, data, out)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("Validate after round trip: %v\n%s", err, out)
		}
		if got, want := strip(back), strip(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\ninput:\n%q\nencoded:\n%s", got, want, data, out)
		}
	})
}

// checkErrors checks that err holds only *Error values for path with lines
// inside data.
func checkErrors(t *testing.T, err error, data []byte) {
	t.Helper()
	errs := Errors(err)
	if len(errs) == 0 {
		t.Fatalf("error %v (%T) holds no *Error", err, err)
	}
	lines := strings.Count(string(data), "\n") + 1
	for _, e := range errs {
		if e.File != "/etc/baton/fuzz.toml" {
			t.Errorf("error %q does not name the file", e)
		}
		if e.Line < 0 || e.Line > lines {
			t.Errorf("error %q: line %d outside the %d lines of the input", e, e.Line, lines)
		}
		if e.Msg == "" {
			t.Errorf("error %q has no message", e)
		}
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As does not find the first error")
	}
}
