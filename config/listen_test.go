package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		in   string
		want Listener
		err  string // substring of the error
	}{
		{in: "http=127.0.0.1:8080", want: Listener{Name: "http", Network: "tcp", Address: "127.0.0.1:8080"}},
		{in: "http=[::1]:80", want: Listener{Name: "http", Network: "tcp", Address: "[::1]:80"}},
		{in: "http=:8080", want: Listener{Name: "http", Network: "tcp", Address: ":8080"}},
		{in: "http=localhost:0", want: Listener{Name: "http", Network: "tcp", Address: "localhost:0"}},
		{in: "v6=tcp6:[::1]:80", want: Listener{Name: "v6", Network: "tcp6", Address: "[::1]:80"}},
		{in: "v4=tcp4:0.0.0.0:80", want: Listener{Name: "v4", Network: "tcp4", Address: "0.0.0.0:80"}},
		{in: "v4=tcp4:[::ffff:127.0.0.1]:80", want: Listener{Name: "v4", Network: "tcp4", Address: "[::ffff:127.0.0.1]:80"}},
		{in: "t=tcp:[fe80::1%eth0]:80", want: Listener{Name: "t", Network: "tcp", Address: "[fe80::1%eth0]:80"}},
		{in: "dns=udp::53", want: Listener{Name: "dns", Network: "udp", Address: ":53"}},
		{in: "dns=udp6:[::]:53", want: Listener{Name: "dns", Network: "udp6", Address: "[::]:53"}},
		{in: "sock=/run/app.sock", want: Listener{Name: "sock", Network: "unix", Address: "/run/app.sock"}},
		{in: "sock=unix:/run/app.sock", want: Listener{Name: "sock", Network: "unix", Address: "/run/app.sock"}},
		{in: "abs=@app", want: Listener{Name: "abs", Network: "unix", Address: "@app"}},
		{in: "abs=unix:@app", want: Listener{Name: "abs", Network: "unix", Address: "@app"}},
		{in: "a.b-c_9=:1", want: Listener{Name: "a.b-c_9", Network: "tcp", Address: ":1"}},
		{in: "x==:1", err: `host must be an IP address or a host name (got "=" in "=:1")`},

		{in: "http", err: "want name=address"},
		{in: "=:80", err: `name must be 1 to 255 of A-Z a-z 0-9 _ . - (got "")`},
		{in: "a:b=:80", err: `name must be 1 to 255`},
		{in: strings.Repeat("n", 256) + "=:80", err: `name must be 1 to 255`},
		{in: "http=", err: "address is empty"},
		{in: "http=tcp:", err: "address is empty"},
		{in: "http=bad", err: `address must be host:port, such as 127.0.0.1:8080 or [::1]:8080 (missing port in address in "bad")`},
		{in: "http=1.2.3.4:65536", err: `port must be a number from 0 to 65535 (got "65536" in "1.2.3.4:65536")`},
		{in: "http=1.2.3.4:http", err: `port must be a number`},
		{in: "http=bad host:80", err: `host must be an IP address or a host name (got "bad host" in "bad host:80")`},
		{in: "http=tcp4:[::1]:80", err: `tcp4 needs an IPv4 address (got "[::1]:80")`},
		{in: "http=tcp6:127.0.0.1:80", err: `tcp6 needs an IPv6 address (got "127.0.0.1:80")`},
		{in: "http=::1:80", err: `address must be host:port`},
		{in: "s=unix:run/app.sock", err: `unix socket address must be an absolute path such as /run/app.sock or an abstract name such as @app (got "run/app.sock")`},
		{in: "s=unix:127.0.0.1:80", err: `unix socket address must be an absolute path`},
		{in: "s=@", err: "abstract socket name after @ is empty"},
		{in: "s=/run/", err: `unix socket path "/run/" names a directory`},
		{in: "s=/" + strings.Repeat("x", 107), err: "unix socket address is 108 bytes long, the kernel takes at most 107"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseListen(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseListen: got %+v, want error %q", got, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "config: listen ") {
					t.Fatalf("error %q, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseListen: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseListeners covers [[listen]] tables: network from prefix and key,
// unix-only keys, and errors at the line of the key at fault.
func TestParseListeners(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []Listener
		err  string
	}{
		{name: "network from path", toml: "[[listen]]\nname = \"s\"\naddress = \"/run/s.sock\"\nmode = \"0660\"\nowner = \"www-data\"\ngroup = \"0\"\n",
			want: []Listener{{Name: "s", Network: "unix", Address: "/run/s.sock", Mode: 0o660, Owner: "www-data", Group: "0"}}},
		{name: "network from prefix", toml: "[[listen]]\nname = \"d\"\naddress = \"udp:127.0.0.1:53\"\n",
			want: []Listener{{Name: "d", Network: "udp", Address: "127.0.0.1:53"}}},
		{name: "network key agrees with prefix", toml: "[[listen]]\nname = \"d\"\nnetwork = \"tcp6\"\naddress = \"tcp6:[::]:80\"\nbacklog = 1024\n",
			want: []Listener{{Name: "d", Network: "tcp6", Address: "[::]:80", Backlog: 1024}}},
		{name: "network key after address", toml: "[[listen]]\naddress = \"@x\"\nname = \"x\"\nnetwork = \"unix\"\n",
			want: []Listener{{Name: "x", Network: "unix", Address: "@x"}}},
		{name: "inline array", toml: "listen = [\n  { name = \"a\", address = \":80\" },\n  { name = \"b\", address = \"/b\" },\n]\n",
			want: []Listener{{Name: "a", Network: "tcp", Address: ":80"}, {Name: "b", Network: "unix", Address: "/b"}}},
		{name: "mode 0", toml: "[[listen]]\nname = \"s\"\naddress = \"/s\"\nmode = \"0\"\n",
			want: []Listener{{Name: "s", Network: "unix", Address: "/s"}}},
		{name: "empty array", toml: "listen = []\n", want: nil},

		{name: "prefix contradicts network", toml: "[[listen]]\nname = \"a\"\nnetwork = \"tcp\"\naddress = \"unix:/x\"\n",
			err: testPath + ":4: listen[0].address: prefix \"unix:\" contradicts network = \"tcp\""},
		{name: "unknown network", toml: "[[listen]]\nname = \"a\"\nnetwork = \"sctp\"\naddress = \":80\"\n",
			err: testPath + ":3: listen[0].network: must be one of tcp, tcp4, tcp6, unix, udp, udp4, udp6 (got \"sctp\")"},
		{name: "path on tcp", toml: "[[listen]]\nname = \"a\"\nnetwork = \"tcp\"\naddress = \"/run/a.sock\"\n",
			err: testPath + ":4: listen[0].address: address must be host:port, such as 127.0.0.1:8080 or [::1]:8080 (missing port in address in \"/run/a.sock\")"},
		{name: "missing name", toml: "[[listen]]\naddress = \":80\"\n",
			err: testPath + ":1: listen[0].name: required"},
		{name: "missing address", toml: "\n[[listen]]\nname = \"a\"\n",
			err: testPath + ":2: listen[0].address: required"},
		{name: "bad name in second", toml: "[[listen]]\nname = \"a\"\naddress = \":80\"\n[[listen]]\nname = \"b c\"\naddress = \":81\"\n",
			err: testPath + ":5: listen[1].name: must be 1 to 255 of A-Z a-z 0-9 _ . - (got \"b c\")"},
		{name: "error in inline element", toml: "listen = [\n  { name = \"a\", address = \":80\" },\n  { name = \"b\", address = \":x\" },\n]\n",
			err: testPath + ":3: listen[1].address: port must be a number from 0 to 65535 (got \"x\" in \":x\")"},
		{name: "mode on tcp", toml: "[[listen]]\nname = \"a\"\naddress = \":80\"\nmode = \"0600\"\n",
			err: testPath + ":4: listen[0].mode: only for unix sockets (network is \"tcp\")"},
		{name: "owner on udp", toml: "[[listen]]\nname = \"a\"\naddress = \"udp::53\"\nowner = \"root\"\n",
			err: testPath + ":4: listen[0].owner: only for unix sockets (network is \"udp\")"},
		{name: "group bad", toml: "[[listen]]\nname = \"a\"\naddress = \"/a\"\ngroup = \"-g\"\n",
			err: testPath + ":4: listen[0].group: must be a name (letters, digits, _ . -, starting with a letter or _) or a numeric id (got \"-g\")"},
		{name: "mode not octal", toml: "[[listen]]\nname = \"a\"\naddress = \"/a\"\nmode = \"0o660\"\n",
			err: testPath + ":4: listen[0].mode: must be a string of octal digits such as \"0660\" (got \"0o660\")"},
		{name: "mode integer", toml: "[[listen]]\nname = \"a\"\naddress = \"/a\"\nmode = 0o660\n",
			err: testPath + ":4: listen[0].mode: must be a string of octal digits such as \"0660\" (got integer)"},
		{name: "mode too big", toml: "[[listen]]\nname = \"a\"\naddress = \"/a\"\nmode = \"01777\"\n",
			err: testPath + ":4: listen[0].mode: must be at most \"0777\" (got \"01777\")"},
		{name: "backlog negative", toml: "[[listen]]\nname = \"a\"\naddress = \":80\"\nbacklog = -1\n",
			err: testPath + ":4: listen[0].backlog: must be from 0 to 65535 (got -1)"},
		{name: "backlog on udp", toml: "[[listen]]\nname = \"a\"\naddress = \"udp::53\"\nbacklog = 5\n",
			err: testPath + ":4: listen[0].backlog: only for stream sockets (network is \"udp\")"},
		{name: "duplicate names", toml: "[[listen]]\nname = \"a\"\naddress = \":80\"\n\n[[listen]]\nname = \"b\"\naddress = \":81\"\n\n[[listen]]\naddress = \":82\"\nname = \"a\"\n",
			err: testPath + ":11: listen[2].name: duplicate name \"a\", also used by listen[0] (line 2)"},
		{name: "element not a table", toml: "listen = [1]\n",
			err: testPath + ":1: listen[0]: must be a table (got integer)"},
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
			if got := strip(c).Listeners; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestListenerModeType pins the type of Mode: permission bits only.
func TestListenerModeType(t *testing.T) {
	c, err := Parse(testPath, []byte("[[listen]]\nname = \"s\"\naddress = \"/s\"\nmode = \"0640\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Listeners[0].Mode, os.FileMode(0o640); got != want || got.Perm() != got {
		t.Errorf("Mode = %v, want %v", got, want)
	}
}
