//go:build linux

package logging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// field is one journal field as received.
type field struct {
	name, value string
}

func (f field) String() string { return fmt.Sprintf("%s=%q", f.name, f.value) }

// parseNative parses a native-protocol entry the way journald does: a line
// with '=' is NAME=value, a line without is NAME followed by a 64-bit
// little-endian length, the value and a newline. It rejects invalid names.
func parseNative(b []byte) ([]field, error) {
	var fields []field
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("entry does not end with a newline")
		}
		var f field
		if eq := bytes.IndexByte(b[:nl], '='); eq >= 0 {
			f = field{string(b[:eq]), string(b[eq+1 : nl])}
			b = b[nl+1:]
		} else {
			f.name = string(b[:nl])
			rest := b[nl+1:]
			if len(rest) < 8 {
				return nil, fmt.Errorf("%s: no length", f.name)
			}
			n := binary.LittleEndian.Uint64(rest)
			rest = rest[8:]
			if uint64(len(rest)) < n+1 || rest[n] != '\n' {
				return nil, fmt.Errorf("%s: length %d does not fit", f.name, n)
			}
			f.value = string(rest[:n])
			b = rest[n+1:]
		}
		if err := checkFieldName(f.name); err != nil {
			return nil, err
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// checkFieldName returns an error unless name is a field name journald
// accepts from a client: 1 to 64 bytes of [A-Z0-9_], not starting with '_'
// or a digit.
func checkFieldName(name string) error {
	if name == "" || len(name) > 64 || name[0] == '_' || ('0' <= name[0] && name[0] <= '9') {
		return fmt.Errorf("invalid field name %q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return fmt.Errorf("invalid field name %q", name)
		}
	}
	return nil
}

// fakeJournal is journald's native socket for tests: a blocking unixgram
// socket in t.TempDir() whose reads give up after ten seconds, so a broken
// test fails instead of hanging.
type fakeJournal struct {
	addr string
	fd   int
}

func newFakeJournal(t *testing.T) *fakeJournal {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "journal")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	j := &fakeJournal{addr: addr, fd: fd}
	t.Cleanup(j.close)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		t.Fatalf("bind %q: %v", addr, err)
	}
	return j
}

// close closes the socket and removes its path, as a stopped journald would.
// Safe to call twice.
func (j *fakeJournal) close() {
	if j.fd >= 0 {
		unix.Close(j.fd)
		j.fd = -1
		os.Remove(j.addr)
	}
}

// recvRaw reads one datagram and returns the entry it carries: its payload,
// or the contents of the memfd it carries, which must be sealed.
func (j *fakeJournal) recvRaw() (entry []byte, viaMemfd bool, err error) {
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := unix.Recvmsg(j.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, false, fmt.Errorf("fake journal: recvmsg: %w", err)
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return nil, false, fmt.Errorf("fake journal: truncated, flags %#x", flags)
	}
	if oobn == 0 {
		return buf[:n], false, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, false, fmt.Errorf("fake journal: control data: %d messages, %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, false, err
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	if n != 0 || len(fds) != 1 {
		return nil, false, fmt.Errorf("fake journal: %d bytes with %d fds, want 0 bytes with 1 fd", n, len(fds))
	}
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, false, fmt.Errorf("fake journal: F_GET_SEALS: %w", err)
	}
	const want = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if seals&want != want {
		return nil, false, fmt.Errorf("fake journal: seals %#x, want %#x", seals, want)
	}
	// The memfd shares its file offset with the sender, which wrote it: read
	// from 0, as journald's mmap does.
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, st.Size()))
	return b, true, err
}

// recv reads one entry and parses it. Call it from t's goroutine.
func (j *fakeJournal) recv(t *testing.T) []field {
	t.Helper()
	b, _, err := j.recvRaw()
	if err != nil {
		t.Fatal(err)
	}
	fields, err := parseNative(b)
	if err != nil {
		t.Fatalf("fake journal: %v in %q", err, b)
	}
	return fields
}

// captureSender keeps what it is asked to send, or fails with err.
type captureSender struct {
	mu        sync.Mutex
	datagrams [][]byte
	err       error
}

func (c *captureSender) send(d []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.datagrams = append(c.datagrams, bytes.Clone(d))
	return nil
}

// tempStderr returns a fresh regular file to pass as stderr, and a function
// that returns what was written to it.
func tempStderr(t *testing.T) (*os.File, func() string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func() string {
		t.Helper()
		if !Flush(10 * time.Second) {
			t.Fatal("log lines not written in 10s")
		}
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// streamOf returns the JOURNAL_STREAM value that names f.
func streamOf(t *testing.T, f *os.File) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(f.Name(), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
