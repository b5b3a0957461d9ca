package fdstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMatches(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tcp4 := &Listener{Name: "web", Network: "tcp", Addr: "127.0.0.1:8080"}
	tcp6 := &Listener{Name: "web", Network: "tcp", Addr: "[::1]:8080"}
	any6 := &Listener{Name: "web", Network: "tcp", Addr: "[::]:80"}
	any4 := &Listener{Name: "web", Network: "tcp", Addr: "0.0.0.0:80"}
	udp := &Listener{Name: "dns", Network: "udp", Addr: "127.0.0.1:53"}
	sock := &Listener{Name: "admin", Network: "unix", Addr: "/run/baton/admin.sock"}
	rel := &Listener{Name: "admin", Network: "unix", Addr: filepath.Join(wd, "x.sock")}
	abs := &Listener{Name: "admin", Network: "unix", Addr: "@baton"}
	store := &Listener{Name: "web", Network: "", Addr: ""} // not a socket

	tests := []struct {
		name string
		l    *Listener
		spec Spec
		want bool
	}{
		{"same", tcp4, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:8080"}, true},
		{"port 0 matches any port", tcp4, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0"}, true},
		{"host name", tcp4, Spec{Name: "web", Network: "tcp", Address: "localhost:8080"}, true},
		{"service name port", any4, Spec{Name: "web", Network: "tcp", Address: ":http"}, true},
		{"tcp4", tcp4, Spec{Name: "web", Network: "tcp4", Address: "127.0.0.1:8080"}, true},
		{"other port", tcp4, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:8081"}, false},
		{"other host", tcp4, Spec{Name: "web", Network: "tcp", Address: "127.0.0.2:8080"}, false},
		{"other name", tcp4, Spec{Name: "www", Network: "tcp", Address: "127.0.0.1:8080"}, false},
		{"tcp6 wants IPv6", tcp4, Spec{Name: "web", Network: "tcp6", Address: ":8080"}, false},
		{"udp is not tcp", tcp4, Spec{Name: "web", Network: "udp", Address: "127.0.0.1:8080"}, false},
		{"IPv6 literal", tcp6, Spec{Name: "web", Network: "tcp6", Address: "[::1]:8080"}, true},
		{"tcp4 refuses IPv6", tcp6, Spec{Name: "web", Network: "tcp4", Address: "[::1]:8080"}, false},
		{"wildcard, dual stack", any6, Spec{Name: "web", Network: "tcp", Address: ":80"}, true},
		{"wildcard, IPv4", any4, Spec{Name: "web", Network: "tcp", Address: ":80"}, true},
		{"wildcard tcp4 refuses [::]", any6, Spec{Name: "web", Network: "tcp4", Address: ":80"}, false},
		{"wildcard tcp6", any6, Spec{Name: "web", Network: "tcp6", Address: ":80"}, true},
		{"wildcard spec, specific listener", tcp4, Spec{Name: "web", Network: "tcp", Address: ":8080"}, false},
		{"explicit 0.0.0.0", any4, Spec{Name: "web", Network: "tcp", Address: "0.0.0.0:80"}, true},
		{"udp", udp, Spec{Name: "dns", Network: "udp4", Address: "127.0.0.1:53"}, true},
		{"tcp is not udp", udp, Spec{Name: "dns", Network: "tcp", Address: "127.0.0.1:53"}, false},
		{"unix path", sock, Spec{Name: "admin", Network: "unix", Address: "/run/baton/admin.sock"}, true},
		{"unix path cleaned", sock, Spec{Name: "admin", Network: "unix", Address: "/run/baton/../baton//admin.sock"}, true},
		{"unix other path", sock, Spec{Name: "admin", Network: "unix", Address: "/run/baton/other.sock"}, false},
		{"unix relative path", rel, Spec{Name: "admin", Network: "unix", Address: "x.sock"}, true},
		{"abstract", abs, Spec{Name: "admin", Network: "unix", Address: "@baton"}, true},
		{"abstract is not a path", abs, Spec{Name: "admin", Network: "unix", Address: "/baton"}, false},
		{"not a socket", store, Spec{Name: "web", Network: "tcp", Address: ":0"}, false},
		{"nil listener", nil, Spec{Name: "web", Network: "tcp", Address: ":0"}, false},
		{"unknown network", tcp4, Spec{Name: "web", Network: "sctp", Address: "127.0.0.1:8080"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.Matches(tt.spec); got != tt.want {
				t.Errorf("%v.Matches(%+v): got %v, want %v", tt.l, tt.spec, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	long := make([]byte, maxUnixPath+1)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name    string
		spec    Spec
		wantErr bool
	}{
		{"tcp", Spec{Name: "web", Network: "tcp", Address: ":80"}, false},
		{"unix with perms", Spec{Name: "a", Network: "unix", Address: "/run/a.sock", Mode: 0o660, Owner: "root", Group: "0"}, false},
		{"abstract", Spec{Name: "a", Network: "unix", Address: "@a"}, false},
		{"bad name", Spec{Name: "a:b", Network: "tcp", Address: ":80"}, true},
		{"empty name", Spec{Name: "", Network: "tcp", Address: ":80"}, true},
		{"unknown network", Spec{Name: "a", Network: "sctp", Address: ":80"}, true},
		{"no port", Spec{Name: "a", Network: "tcp", Address: "localhost"}, true},
		{"mode on tcp", Spec{Name: "a", Network: "tcp", Address: ":80", Mode: 0o600}, true},
		{"owner on abstract", Spec{Name: "a", Network: "unix", Address: "@a", Owner: "root"}, true},
		{"empty unix path", Spec{Name: "a", Network: "unix"}, true},
		{"empty abstract name", Spec{Name: "a", Network: "unix", Address: "@"}, true},
		{"unix path too long", Spec{Name: "a", Network: "unix", Address: "/" + string(long)}, true},
		{"setuid mode", Spec{Name: "a", Network: "unix", Address: "/a", Mode: os.ModeSetuid | 0o600}, true},
		{"negative backlog", Spec{Name: "a", Network: "tcp", Address: ":80", Backlog: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%+v): got %v, want error %v", tt.spec, err, tt.wantErr)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		name string
		ok   bool
	}{
		{"web", true},
		{"A-z_0.9", true},
		{"", false},
		{"a:b", false},
		{"a b", false},
		{"é", false},
		{long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidName(tt.name); (err == nil) != tt.ok {
				t.Errorf("ValidName(%q): got %v, want ok %v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	for src, want := range map[Source]string{Activated: "activated", Opened: "opened", 0: "Source(0)"} {
		if got := src.String(); got != want {
			t.Errorf("Source(%d).String(): got %q, want %q", int(src), got, want)
		}
	}
}
