//go:build linux

package fdstore

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Send passes ls, with their names and sources, over conn to a Receive at
// the other end: a connected unix socket of type SOCK_SEQPACKET (as from
// unix.Socketpair wrapped with net.FileConn), SOCK_STREAM or SOCK_DGRAM.
// The fds go with SCM_RIGHTS in chunks of at most 200 after a header that
// says how many follow, so any number up to 65536 passes (SCM_MAX_FD is
// 253 per message). Network and Addr are not sent: Receive reads them from
// the sockets.
//
// Send does not close or change ls; the caller still owns them, and the
// receiver owns its own copies. Names must be valid fd names (printable
// ASCII other than ':', 1 to 255 bytes), files open, sources valid; else
// Send fails before sending anything. It blocks until the messages are
// queued; conn's write deadline applies. After an error the peer may have
// received part of the set (its Receive fails and closes that part).
func Send(conn *net.UnixConn, ls []*Listener) error {
	if len(ls) > maxListeners {
		return fmt.Errorf("fdstore: send: %d listeners, the limit is %d", len(ls), maxListeners)
	}
	for i, l := range ls {
		switch {
		case l == nil || l.File == nil:
			return fmt.Errorf("fdstore: send: listener %d has no file", i)
		case !validFDName(l.Name):
			return fmt.Errorf("fdstore: send %q: invalid fd name", l.Name)
		case !l.Source.valid():
			return fmt.Errorf("fdstore: send %q: invalid source %v", l.Name, l.Source)
		case l.File.Fd() == ^uintptr(0):
			return fmt.Errorf("fdstore: send %q: %w", l.Name, os.ErrClosed)
		}
	}
	chunks := (len(ls) + chunkFDs - 1) / chunkFDs
	if err := writeFrame(conn, encodeHeader(len(ls), chunks), nil); err != nil {
		return fmt.Errorf("fdstore: send header: %w", err)
	}
	for start := 0; start < len(ls); start += chunkFDs {
		part := ls[start:min(start+chunkFDs, len(ls))]
		es := make([]entry, len(part))
		fds := make([]int, len(part))
		for i, l := range part {
			es[i] = entry{source: l.Source, name: l.Name}
			fds[i] = int(l.File.Fd())
		}
		err := writeFrame(conn, encodeChunk(es), unix.UnixRights(fds...))
		for _, l := range part {
			runtime.KeepAlive(l.File) // the fd numbers were in use until now
		}
		if err != nil {
			return fmt.Errorf("fdstore: send %q and %d more: %w", part[0].Name, len(part)-1, err)
		}
	}
	return nil
}

// writeFrame writes frame with oob attached to its first byte; on a stream
// socket a short write is completed without oob.
func writeFrame(conn *net.UnixConn, frame, oob []byte) error {
	n, oobn, err := conn.WriteMsgUnix(frame, oob, nil)
	if err != nil {
		return err
	}
	if oobn != len(oob) {
		return fmt.Errorf("sent %d of %d bytes of fds", oobn, len(oob))
	}
	if n < len(frame) {
		_, err = conn.Write(frame[n:])
	}
	return err
}

// Receive reads a set of listeners sent by Send over conn and returns them
// in the order sent, with their names and sources; Network and Addr come
// from the sockets. The fds are received with MSG_CMSG_CLOEXEC; the caller
// owns the result.
//
// On any error, every fd received so far is closed and nothing is
// returned. A peer that breaks the protocol (bad frame, fd counts that do
// not match the names, truncated fds, closing early) gives an error
// wrapping ErrTransfer or io.ErrUnexpectedEOF. conn's read deadline
// applies.
func Receive(conn *net.UnixConn) (ls []*Listener, err error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fdstore: receive: %w", err)
	}
	r := &frameReader{rc: rc, oob: make([]byte, unix.CmsgSpace(maxChunkFDs*4))}
	var sotype int
	var operr error
	if err := rc.Control(func(fd uintptr) {
		sotype, operr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil || operr != nil {
		return nil, fmt.Errorf("fdstore: receive: socket type: %w", firstErr(err, os.NewSyscallError("getsockopt", operr)))
	}
	r.stream = sotype == unix.SOCK_STREAM

	var fds []int // received and not yet wrapped: closed on error
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()

	frame, got, err := r.read()
	fds = append(fds, got...)
	if err != nil {
		return nil, fmt.Errorf("fdstore: receive header: %w", err)
	}
	if len(got) != 0 {
		return nil, fmt.Errorf("fdstore: receive header: %w: it carries %d fds", ErrTransfer, len(got))
	}
	count, chunks, err := decodeHeader(frame)
	if err != nil {
		return nil, err
	}
	entries := make([]entry, 0, count)
	for i := range chunks {
		frame, got, err := r.read()
		fds = append(fds, got...)
		if err != nil {
			return nil, fmt.Errorf("fdstore: receive chunk %d of %d: %w", i+1, chunks, err)
		}
		es, err := decodeChunk(frame)
		if err != nil {
			return nil, err
		}
		if len(es) != len(got) {
			return nil, fmt.Errorf("fdstore: %w: chunk %d names %d listeners but carries %d fds", ErrTransfer, i+1, len(es), len(got))
		}
		entries = append(entries, es...)
	}
	if len(entries) != count || len(fds) != count {
		return nil, fmt.Errorf("fdstore: %w: header says %d listeners, chunks hold %d", ErrTransfer, count, len(entries))
	}

	ls = make([]*Listener, 0, count)
	for i, e := range entries {
		l, err := wrap(e.name, e.source, fds[i])
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			fds = fds[i:]
			return nil, fmt.Errorf("fdstore: receive %q: %w", e.name, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// frameReader reads frames and the fds that come with them. On a stream
// socket it reads exactly one frame's bytes, so no fds of the next frame
// are taken early; on a message socket one recvmsg is one frame.
type frameReader struct {
	rc     syscall.RawConn
	stream bool
	oob    []byte
}

// read returns the next frame and the fds received with it. The fds are
// returned even with an error, for the caller to close.
func (r *frameReader) read() (frame []byte, fds []int, err error) {
	if !r.stream {
		buf := make([]byte, prefixLen+maxBodyLen+1)
		n, flags, fds, err := r.recv(buf)
		switch {
		case err != nil:
			return nil, fds, err
		case n == 0:
			return nil, fds, io.ErrUnexpectedEOF
		case flags&unix.MSG_CTRUNC != 0:
			return nil, fds, fmt.Errorf("%w: fds truncated (MSG_CTRUNC)", ErrTransfer)
		case flags&unix.MSG_TRUNC != 0 || n > prefixLen+maxBodyLen:
			return nil, fds, fmt.Errorf("%w: message longer than %d bytes", ErrTransfer, prefixLen+maxBodyLen)
		}
		return buf[:n], fds, nil
	}
	frame = make([]byte, prefixLen)
	fds, err = r.readFull(frame, nil)
	if err != nil {
		return nil, fds, err
	}
	n := binary.BigEndian.Uint32(frame)
	if n > maxBodyLen {
		return nil, fds, fmt.Errorf("%w: message of %d bytes, the limit is %d", ErrTransfer, n, maxBodyLen)
	}
	frame = append(frame, make([]byte, n)...)
	fds, err = r.readFull(frame[prefixLen:], fds)
	return frame, fds, err
}

// readFull fills buf from a stream socket, appending the fds that arrive to
// fds.
func (r *frameReader) readFull(buf []byte, fds []int) ([]int, error) {
	for len(buf) > 0 {
		n, flags, got, err := r.recv(buf)
		fds = append(fds, got...)
		switch {
		case err != nil:
			return fds, err
		case n == 0:
			return fds, io.ErrUnexpectedEOF
		case flags&unix.MSG_CTRUNC != 0:
			return fds, fmt.Errorf("%w: fds truncated (MSG_CTRUNC)", ErrTransfer)
		}
		buf = buf[n:]
	}
	return fds, nil
}

// recv is one recvmsg with MSG_CMSG_CLOEXEC, waiting in the poller.
func (r *frameReader) recv(buf []byte) (n, flags int, fds []int, err error) {
	var oobn int
	var operr error
	err = r.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, operr = unix.Recvmsg(int(fd), buf, r.oob, unix.MSG_CMSG_CLOEXEC)
			if operr != unix.EINTR {
				return operr != unix.EAGAIN
			}
		}
	})
	if err == nil && operr != nil {
		err = os.NewSyscallError("recvmsg", operr)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	if oobn > 0 {
		fds, err = parseRights(r.oob[:oobn])
	}
	return n, flags, fds, err
}

// parseRights returns the fds of every SCM_RIGHTS message in oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: control message: %v", ErrTransfer, err)
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, fmt.Errorf("%w: SCM_RIGHTS: %v", ErrTransfer, err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
