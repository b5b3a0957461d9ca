//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestListeners checks which passed listeners hello serves and that it
// closes the ones it does not.
func TestListeners(t *testing.T) {
	tests := []struct {
		name       string
		passed     []string // names of the TCP listeners passed, in fd order
		args       []string
		wantServed []string // names, as logged ("serving name=…"), sorted
		wantClosed []string // passed names hello must not keep open
	}{
		{"default name", []string{"http"}, nil, []string{"http"}, nil},
		{"two names", []string{"http", "admin"}, []string{"-names", "admin, http"}, []string{"admin", "http"}, nil},
		{"star", []string{"a", "b"}, []string{"-names", "*"}, []string{"a", "b"}, nil},
		{"repeated name", []string{"http", "http"}, nil, []string{"http", "http"}, nil},
		{"others closed", []string{"metrics", "http"}, nil, []string{"http"}, []string{"metrics"}},
		{"-listen ignored", []string{"http"}, []string{"-listen", "127.0.0.1:0"}, []string{"http"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []passed
			addrs := map[string][]string{} // name → addresses
			inodes := map[string]uint64{}
			for _, name := range tt.passed {
				ln, f := listenTCP(t)
				files = append(files, passed{name, f})
				addrs[name] = append(addrs[name], ln.Addr().String())
				inodes[name] = inode(t, f)
			}
			p := start(t, spec{files: files, args: tt.args})
			p.expectNotify(t, "READY=1") // logged "serving" and closed the others before

			want := fmt.Sprintf("pid=%d ", p.pid())
			for _, name := range tt.wantServed {
				for _, addr := range addrs[name] {
					c := mustDial(t, addr)
					if _, body := c.mustGet(t, "/"); !strings.HasPrefix(body, want) {
						t.Errorf("%s at %s: got %q, want %q…", name, addr, body, want)
					}
					c.Close()
				}
			}
			open := socketInodes(t, p.pid())
			for _, name := range tt.wantServed {
				if !open[inodes[name]] {
					t.Errorf("listener %q not among hello's open sockets", name)
				}
			}
			for _, name := range tt.wantClosed {
				if open[inodes[name]] {
					t.Errorf("hello keeps listener %q open, want it closed", name)
				}
			}
			p.signal(t, syscall.SIGTERM)
			if got := p.wait(t); got != 0 {
				t.Errorf("exit status: got %d, want 0", got)
			}
			var served []string // from the log, complete once hello exited
			for _, line := range p.log.lines("msg=serving") {
				served = append(served, logValue(line, "name"))
			}
			slices.Sort(served)
			if !slices.Equal(served, tt.wantServed) {
				t.Errorf("served: got %q, want %q", served, tt.wantServed)
			}
		})
	}
}

// TestListenFlag runs hello bare, as the benchmark baseline does.
func TestListenFlag(t *testing.T) {
	p := start(t, spec{args: []string{"-listen", "127.0.0.1:0"}})
	p.expectNotify(t, "READY=1")
	line := p.log.waitLines(t, 1, "msg=serving", "name=listen")[0]
	c := mustDial(t, logValue(line, "addr"))
	if _, body := c.mustGet(t, "/"); !strings.HasPrefix(body, fmt.Sprintf("pid=%d generation=0 ", p.pid())) {
		t.Errorf("got %q", body)
	}
	c.Close()
	p.signal(t, syscall.SIGTERM)
	if got := p.wait(t); got != 0 {
		t.Errorf("exit status: got %d, want 0", got)
	}
}

// TestNothingToServe checks that hello refuses to start, clearly, when it
// has nothing to serve on, and never reports ready then.
func TestNothingToServe(t *testing.T) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpFile, err := udp.File()
	if err != nil {
		t.Fatal(err)
	}
	defer udpFile.Close()
	_, tcpFile := listenTCP(t)

	tests := []struct {
		name      string
		files     []passed
		listenPID string
		args      []string
		want      string // in stderr
	}{
		{"no listener", nil, "", nil, "no -listen address"},
		{"missing name", []passed{{"http", tcpFile}}, "", []string{"-names", "http,admin"}, `with the name "admin" (received: "http")`},
		{"default name missing", []passed{{"hello.socket", tcpFile}}, "", nil, `with the name "http" (received: "hello.socket")`},
		{"LISTEN_PID of another process", []passed{{"http", tcpFile}}, "1", nil, `LISTEN_PID="1"`},
		{"datagram socket only", []passed{{"http", udpFile}}, "", nil, "no stream listener"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, spec{files: tt.files, listenPID: tt.listenPID, args: tt.args})
			if got := p.wait(t); got != exitError {
				t.Errorf("exit status: got %d, want %d", got, exitError)
			}
			lines := p.log.lines("level=ERROR")
			if len(lines) != 1 || !strings.Contains(logErr(lines[0]), tt.want) {
				t.Errorf("stderr: got %q, want one error containing %q", lines, tt.want)
			}
			p.expectNoNotify(t)
		})
	}
}

// inode returns the inode of f's socket.
func inode(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// socketInodes returns the inodes of the sockets process pid has open.
func socketInodes(t *testing.T, pid int) map[uint64]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[uint64]bool{}
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		var ino uint64
		if _, err := fmt.Sscanf(link, "socket:[%d]", &ino); err == nil {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		t.Fatalf("%s: no socket at all; cannot check", dir)
	}
	return inodes
}
