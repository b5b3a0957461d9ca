//go:build linux

package fdstore

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// socketPair returns both ends of a connected unix socket pair of type
// sotype as *net.UnixConn, closed when t ends.
func socketPair(t *testing.T, sotype int) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("pair%d", i))
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { conns[i].Close() })
	}
	return conns[0], conns[1]
}

// testListeners returns n listeners: up to three real sockets (tcp, unix,
// udp), then /dev/null fds; names repeat in pairs, sources alternate.
func testListeners(t *testing.T, n int) []*Listener {
	t.Helper()
	dir := t.TempDir()
	specs := []Spec{
		{Name: "web", Network: "tcp", Address: "127.0.0.1:0"},
		{Name: "admin", Network: "unix", Address: filepath.Join(dir, "admin.sock")},
		{Name: "dns", Network: "udp", Address: "127.0.0.1:0"},
	}
	var ls []*Listener
	for i := range n {
		src := Opened
		if i%2 == 1 {
			src = Activated
		}
		if i < len(specs) {
			l, err := Open(specs[i])
			if err != nil {
				t.Fatal(err)
			}
			l.Source = src
			t.Cleanup(func() { l.Close() })
			ls = append(ls, l)
			continue
		}
		ls = append(ls, devNull(t, fmt.Sprintf("n%d", i/2), src))
	}
	return ls
}

func closeAll(ls []*Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// sameFile reports whether a and b are the same open socket or file.
func sameFile(t *testing.T, a, b *os.File) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(int(a.Fd()), &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(b.Fd()), &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func TestSendReceive(t *testing.T) {
	tests := []struct {
		name   string
		sotype int
		n      int
	}{
		{"seqpacket 0", unix.SOCK_SEQPACKET, 0},
		{"seqpacket 1", unix.SOCK_SEQPACKET, 1},
		{"seqpacket 3", unix.SOCK_SEQPACKET, 3},
		{"seqpacket 300", unix.SOCK_SEQPACKET, 300},
		{"seqpacket 400, exactly two chunks", unix.SOCK_SEQPACKET, 400},
		{"stream 3", unix.SOCK_STREAM, 3},
		{"stream 300", unix.SOCK_STREAM, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := socketPair(t, tt.sotype)
			base := fdCount(t)
			sent := testListeners(t, tt.n)

			errc := make(chan error, 1)
			go func() { errc <- Send(a, sent) }()
			got, err := Receive(b)
			if serr := <-errc; serr != nil {
				t.Fatalf("Send: %v", serr)
			}
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if len(got) != len(sent) {
				t.Fatalf("got %d listeners, want %d", len(got), len(sent))
			}
			if Names(got) != Names(sent) {
				t.Errorf("names: got %q, want %q", Names(got), Names(sent))
			}
			for i := range sent {
				g, w := got[i], sent[i]
				if g.Source != w.Source || g.Network != w.Network || g.Addr != w.Addr {
					t.Errorf("listener %d: got %v, want %v", i, g, w)
				}
				if !sameFile(t, g.File, w.File) {
					t.Errorf("listener %d (%s): received fd is not the sent socket", i, g.Name)
				}
				if !cloexec(t, g.File.Fd()) {
					t.Errorf("listener %d (%s): close-on-exec not set", i, g.Name)
				}
			}
			closeAll(got)
			closeAll(sent)
			checkNoLeak(t, base)
		})
	}
}

func TestSendInvalid(t *testing.T) {
	closed := devNull(t, "closed", Opened)
	closed.Close()
	tests := []struct {
		name string
		l    *Listener
	}{
		{"nil listener", nil},
		{"no file", &Listener{Name: "x", Source: Opened}},
		{"name with colon", devNull(t, "a:b", Opened)},
		{"empty name", devNull(t, "", Opened)},
		{"no source", devNull(t, "x", 0)},
		{"closed file", closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := socketPair(t, unix.SOCK_SEQPACKET)
			if tt.l != nil {
				defer tt.l.Close()
			}
			if err := Send(a, []*Listener{devNull(t, "ok", Opened), tt.l}); err == nil {
				t.Fatal("Send succeeded")
			}
			// Nothing was sent: the peer sees EOF, not a header.
			a.CloseWrite()
			if _, err := Receive(b); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Receive after failed Send: got %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

// TestReceiveMalformed plays a broken sender frame by frame: Receive must
// fail and close every fd it received.
func TestReceiveMalformed(t *testing.T) {
	chunk := func(names ...string) []byte {
		es := make([]entry, len(names))
		for i, n := range names {
			es[i] = entry{source: Opened, name: n}
		}
		return encodeChunk(es)
	}
	type frame struct {
		data []byte
		fds  int // /dev/null fds attached
	}
	tests := []struct {
		name    string
		frames  []frame
		wantErr error
	}{
		{"more fds than names", []frame{{encodeHeader(1, 1), 0}, {chunk("a"), 2}}, ErrTransfer},
		{"fewer fds than names", []frame{{encodeHeader(2, 1), 0}, {chunk("a", "b"), 1}}, ErrTransfer},
		{"short chunk", []frame{{encodeHeader(2, 1), 0}, {chunk("a", "b")[:12], 2}}, ErrTransfer},
		{"chunk length lies", []frame{{encodeHeader(1, 1), 0}, {append(chunk("a"), 'x'), 1}}, ErrTransfer},
		{"header count above chunks", []frame{{encodeHeader(3, 2), 0}, {chunk("a"), 1}, {chunk("b"), 1}}, ErrTransfer},
		{"header carries fds", []frame{{encodeHeader(1, 1), 1}}, ErrTransfer},
		{"bad magic", []frame{{append(encodeHeader(1, 1)[:4], "XXXX\x01H\x00\x00\x00\x01\x00\x00\x00\x01"...), 0}}, ErrTransfer},
		{"chunk where header expected", []frame{{chunk("a"), 1}}, ErrTransfer},
		{"peer stops after the first chunk", []frame{{encodeHeader(2, 2), 0}, {chunk("a"), 1}}, io.ErrUnexpectedEOF},
		{"empty message", []frame{{[]byte{0, 0, 0, 0}, 0}}, ErrTransfer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := socketPair(t, unix.SOCK_SEQPACKET)
			base := fdCount(t)
			for _, f := range tt.frames {
				var oob []byte
				var files []*os.File
				for range f.fds {
					l := devNull(t, "x", Opened)
					files = append(files, l.File)
				}
				if len(files) > 0 {
					fds := make([]int, len(files))
					for i, file := range files {
						fds[i] = int(file.Fd())
					}
					oob = unix.UnixRights(fds...)
				}
				if err := writeFrame(a, f.data, oob); err != nil {
					t.Fatalf("write frame: %v", err)
				}
				for _, file := range files {
					file.Close() // in flight, the kernel holds them
				}
			}
			a.CloseWrite()
			ls, err := Receive(b)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Receive: got %v, want %v", err, tt.wantErr)
			}
			if ls != nil {
				t.Errorf("Receive returned %d listeners with an error", len(ls))
				closeAll(ls)
			}
			// Unread frames still hold fds in the socket: drain them.
			drain(t, b)
			checkNoLeak(t, base)
		})
	}
}

// drain reads and closes whatever is left in conn until EOF.
func drain(t *testing.T, conn *net.UnixConn) {
	t.Helper()
	buf := make([]byte, prefixLen+maxBodyLen)
	oob := make([]byte, unix.CmsgSpace(maxChunkFDs*4))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			fds, perr := parseRights(oob[:oobn])
			if perr != nil {
				t.Fatal(perr)
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		if err != nil || n == 0 && oobn == 0 {
			return
		}
	}
}
