//go:build linux

package fdstore

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenInet(t *testing.T) {
	tests := []struct {
		name        string
		spec        Spec
		wantNetwork string
		wantHost    string
		needIPv6    bool
	}{
		{"tcp4 loopback", Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0"}, "tcp", "127.0.0.1", false},
		{"tcp4 explicit", Spec{Name: "web", Network: "tcp4", Address: "127.0.0.1:0"}, "tcp", "127.0.0.1", false},
		{"tcp host name", Spec{Name: "web", Network: "tcp", Address: "localhost:0"}, "tcp", "127.0.0.1", false},
		{"tcp6 loopback", Spec{Name: "web6", Network: "tcp6", Address: "[::1]:0"}, "tcp", "::1", true},
		{"udp loopback", Spec{Name: "dns", Network: "udp", Address: "127.0.0.1:0"}, "udp", "127.0.0.1", false},
		{"udp6 loopback", Spec{Name: "dns6", Network: "udp6", Address: "[::1]:0"}, "udp", "::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needIPv6 {
				skipWithoutIPv6(t)
			}
			l := mustOpen(t, tt.spec)
			if l.Name != tt.spec.Name || l.Source != Opened || l.Network != tt.wantNetwork {
				t.Fatalf("got %v, want %s (%s …, opened)", l, tt.spec.Name, tt.wantNetwork)
			}
			ap, err := netip.ParseAddrPort(l.Addr)
			if err != nil {
				t.Fatalf("Addr %q: %v", l.Addr, err)
			}
			if ap.Addr().String() != tt.wantHost || ap.Port() == 0 {
				t.Errorf("Addr: got %s, want %s with a port", l.Addr, tt.wantHost)
			}
			if !cloexec(t, l.File.Fd()) {
				t.Error("close-on-exec not set")
			}
			if !l.Matches(tt.spec) {
				t.Errorf("%v does not match its own spec %+v", l, tt.spec)
			}
			if l.Network == "tcp" {
				// A listening socket completes the handshake before accept.
				c, err := net.Dial(tt.spec.Network, l.Addr)
				if err != nil {
					t.Fatalf("dial %s: %v", l.Addr, err)
				}
				c.Close()
				if v, err := unix.GetsockoptInt(int(l.File.Fd()), unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v != 1 {
					t.Errorf("SO_REUSEADDR: got %d (%v), want 1", v, err)
				}
			}
		})
	}
}

func TestOpenWildcardDualStack(t *testing.T) {
	skipWithoutIPv6(t)
	l := mustOpen(t, Spec{Name: "any", Network: "tcp", Address: ":0"})
	ap, err := netip.ParseAddrPort(l.Addr)
	if err != nil || !ap.Addr().IsUnspecified() {
		t.Fatalf("Addr: got %q, want a wildcard", l.Addr)
	}
	if v, err := unix.GetsockoptInt(int(l.File.Fd()), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil || v != 0 {
		t.Errorf("IPV6_V6ONLY: got %d (%v), want 0 (dual stack)", v, err)
	}
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ap.Port()))))
	if err != nil {
		t.Fatalf("dial IPv4 to dual-stack listener: %v", err)
	}
	c.Close()
}

func TestOpenBacklog(t *testing.T) {
	tests := []struct {
		name    string
		backlog int
		want    uint32
	}{
		{"explicit", 7, 7},
		{"default is somaxconn", 0, uint32(listenBacklog(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustOpen(t, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0", Backlog: tt.backlog})
			// For a listening socket, tcpi_sacked is sk_max_ack_backlog.
			info, err := unix.GetsockoptTCPInfo(int(l.File.Fd()), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				t.Fatal(err)
			}
			if info.Sacked != tt.want {
				t.Errorf("backlog: got %d, want %d", info.Sacked, tt.want)
			}
		})
	}
}

func TestOpenUnix(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	group, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		mode         os.FileMode
		owner, group string
	}{
		{"mode 0660, numeric ids", 0o660, me.Uid, me.Gid},
		{"mode 0600, names", 0o600, me.Username, group.Name},
		{"mode 0666 only", 0o666, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.sock")
			l := mustOpen(t, Spec{Name: "admin", Network: "unix", Address: path, Mode: tt.mode, Owner: tt.owner, Group: tt.group})
			if l.Network != "unix" || l.Addr != path {
				t.Errorf("got %s %s, want unix %s", l.Network, l.Addr, path)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tt.mode {
				t.Errorf("mode: got %v, want socket %v", fi.Mode(), tt.mode)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if uid, gid := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid)); uid != me.Uid || gid != me.Gid {
				t.Errorf("owner: got %s:%s, want %s:%s", uid, gid, me.Uid, me.Gid)
			}
			if !cloexec(t, l.File.Fd()) {
				t.Error("close-on-exec not set")
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.Close()
		})
	}
}

func TestOpenUnixAbstract(t *testing.T) {
	name := "@fdstore-test-" + strconv.Itoa(os.Getpid())
	l := mustOpen(t, Spec{Name: "abs", Network: "unix", Address: name})
	if l.Addr != name {
		t.Errorf("Addr: got %q, want %q", l.Addr, name)
	}
	c, err := net.Dial("unix", name)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
}

func TestOpenUnixExistingFile(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // puts something at path
		wantErr error                           // nil: Open succeeds
		kept    bool                            // the file at path must be left as it was
	}{
		{"stale socket is removed", func(t *testing.T, path string) {
			l := mustOpen(t, Spec{Name: "old", Network: "unix", Address: path})
			l.Close() // the file stays, nobody accepts
		}, nil, false},
		{"stale datagram socket is removed", func(t *testing.T, path string) {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
		}, nil, false},
		{"live socket is refused", func(t *testing.T, path string) {
			mustOpen(t, Spec{Name: "live", Network: "unix", Address: path})
		}, syscall.EADDRINUSE, true},
		{"regular file is never removed", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrNotSocket, true},
		{"symlink to a socket is never removed", func(t *testing.T, path string) {
			target := path + ".target"
			l := mustOpen(t, Spec{Name: "t", Network: "unix", Address: target})
			l.Close()
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, ErrNotSocket, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.sock")
			tt.prepare(t, path)
			before, _ := os.Lstat(path)
			l, err := Open(Spec{Name: "admin", Network: "unix", Address: path})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer l.Close()
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatalf("dial new socket: %v", err)
				}
				c.Close()
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open: got %v, want %v", err, tt.wantErr)
			}
			after, statErr := os.Lstat(path)
			if tt.kept && (statErr != nil || !os.SameFile(before, after)) {
				t.Errorf("file at %s was changed or removed (%v)", path, statErr)
			}
		})
	}
}

func TestOpenUnixRegularFileContentKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Spec{Name: "admin", Network: "unix", Address: path}); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("got %v, want ErrNotSocket", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "keep me" {
		t.Errorf("content: got %q (%v), want %q", got, err, "keep me")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	busy := mustOpen(t, Spec{Name: "busy", Network: "tcp", Address: "127.0.0.1:0"})
	tests := []struct {
		name    string
		spec    Spec
		wantErr error
		noFile  string // this path must not exist afterwards
	}{
		{"invalid spec", Spec{Name: "a:b", Network: "tcp", Address: ":0"}, ErrInvalidSpec, ""},
		{"tcp port taken", Spec{Name: "web", Network: "tcp", Address: busy.Addr}, syscall.EADDRINUSE, ""},
		{"unknown user", Spec{Name: "s", Network: "unix", Address: filepath.Join(dir, "u.sock"), Owner: "no-such-user-fdstore"}, nil, filepath.Join(dir, "u.sock")},
		{"missing directory", Spec{Name: "s", Network: "unix", Address: filepath.Join(dir, "none", "s.sock")}, syscall.ENOENT, ""},
		{"v4 address for tcp6", Spec{Name: "s", Network: "tcp6", Address: "127.0.0.1:0"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := fdCount(t)
			l, err := Open(tt.spec)
			if err == nil {
				l.Close()
				t.Fatalf("Open(%+v) succeeded", tt.spec)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidSpec) && !strings.Contains(err.Error(), strconv.Quote(tt.spec.Name)) {
				t.Errorf("error %q does not name listener %q", err, tt.spec.Name)
			}
			if tt.noFile != "" {
				if _, err := os.Lstat(tt.noFile); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind (%v)", tt.noFile, err)
				}
			}
			checkNoLeak(t, base)
		})
	}
}

func skipWithoutIPv6(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l.Close()
}

// Open and Resolve given literal specs look nothing up.
func TestOpenResolveLiteralNoLookup(t *testing.T) {
	r := &fakeResolver{}
	useResolver(t, r)
	l := mustOpen(t, Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0"})
	mustOpen(t, Spec{Name: "any", Network: "tcp4", Address: ":0"})
	mustOpen(t, Spec{Name: "dns", Network: "udp", Address: "127.0.0.1:0"})
	specs := []Spec{
		{Name: "web", Network: "tcp", Address: l.Addr},
		{Name: "new", Network: "tcp", Address: "127.0.0.1:0"},
	}
	use, unused, err := Resolve(specs, []*Listener{l})
	if err != nil {
		t.Fatal(err)
	}
	if use[0] != l || len(unused) != 0 {
		t.Errorf("use %v, unused %v: want the listener reused", use, unused)
	}
	use[1].Close()
	if len(r.calls) != 0 {
		t.Errorf("lookups: %q", r.calls)
	}
}
