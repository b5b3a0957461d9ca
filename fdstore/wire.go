package fdstore

import (
	"encoding/binary"
	"fmt"
)

// The Send/Receive wire format. Every message is a frame: a big-endian
// uint32 body length, then the body. Each body starts with the magic
// "BTFD", the version 1 and a kind byte.
//
//	header 'H': uint32 listener count, uint32 chunk count; no fds.
//	chunk  'C': uint16 n, then n entries (uint8 source, uint8 name
//	            length, name); carries exactly n fds (SCM_RIGHTS), in order.
//
// The header comes first; the chunks follow and hold the listeners in order.
// Senders put at most chunkFDs fds in a chunk; receivers accept up to
// maxChunkFDs (SCM_MAX_FD), so a future sender may use bigger chunks.
const (
	wireVersion  = 1
	kindHeader   = 'H'
	kindChunk    = 'C'
	chunkFDs     = 200
	maxChunkFDs  = 253 // SCM_MAX_FD
	maxListeners = 1 << 16

	prefixLen    = 4
	bodyStartLen = 6 // magic, version, kind
	headerLen    = bodyStartLen + 8
	maxBodyLen   = bodyStartLen + 2 + maxChunkFDs*(2+maxNameLen)
)

var wireMagic = [4]byte{'B', 'T', 'F', 'D'}

// entry is what a chunk says about one fd.
type entry struct {
	source Source
	name   string
}

func appendBodyStart(b []byte, kind byte) []byte {
	b = append(b, 0, 0, 0, 0) // length, set by finishFrame
	b = append(b, wireMagic[:]...)
	return append(b, wireVersion, kind)
}

func finishFrame(b []byte) []byte {
	binary.BigEndian.PutUint32(b, uint32(len(b)-prefixLen))
	return b
}

// encodeHeader returns the header frame.
func encodeHeader(count, chunks int) []byte {
	b := appendBodyStart(make([]byte, 0, prefixLen+headerLen), kindHeader)
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	b = binary.BigEndian.AppendUint32(b, uint32(chunks))
	return finishFrame(b)
}

// encodeChunk returns the chunk frame for es. Names must be valid fd names
// (checked by Send) and len(es) at most maxChunkFDs.
func encodeChunk(es []entry) []byte {
	b := appendBodyStart(nil, kindChunk)
	b = binary.BigEndian.AppendUint16(b, uint16(len(es)))
	for _, e := range es {
		b = append(b, byte(e.source), byte(len(e.name)))
		b = append(b, e.name...)
	}
	return finishFrame(b)
}

// checkFrame checks the length prefix and the start of the body of frame
// and returns the rest of the body.
func checkFrame(frame []byte, kind byte) ([]byte, error) {
	if len(frame) < prefixLen+bodyStartLen {
		return nil, fmt.Errorf("fdstore: %w: message of %d bytes is too short", ErrTransfer, len(frame))
	}
	if n := binary.BigEndian.Uint32(frame); int64(n) != int64(len(frame)-prefixLen) {
		return nil, fmt.Errorf("fdstore: %w: message says %d bytes, has %d", ErrTransfer, n, len(frame)-prefixLen)
	}
	body := frame[prefixLen:]
	switch {
	case [4]byte(body[:4]) != wireMagic:
		return nil, fmt.Errorf("fdstore: %w: bad magic %q", ErrTransfer, body[:4])
	case body[4] != wireVersion:
		return nil, fmt.Errorf("fdstore: %w: version %d, this baton speaks %d", ErrTransfer, body[4], wireVersion)
	case body[5] != kind:
		return nil, fmt.Errorf("fdstore: %w: message kind %q, want %q", ErrTransfer, body[5], kind)
	}
	return body[bodyStartLen:], nil
}

// decodeHeader returns the listener and chunk counts of a header frame,
// checked to be consistent.
func decodeHeader(frame []byte) (count, chunks int, err error) {
	rest, err := checkFrame(frame, kindHeader)
	if err != nil {
		return 0, 0, err
	}
	if len(rest) != 8 {
		return 0, 0, fmt.Errorf("fdstore: %w: header of %d bytes, want %d", ErrTransfer, len(rest)+bodyStartLen, headerLen)
	}
	c, k := binary.BigEndian.Uint32(rest), binary.BigEndian.Uint32(rest[4:])
	switch {
	case c > maxListeners:
		return 0, 0, fmt.Errorf("fdstore: %w: %d listeners, the limit is %d", ErrTransfer, c, maxListeners)
	case k > c || c > k*maxChunkFDs:
		return 0, 0, fmt.Errorf("fdstore: %w: %d listeners cannot come in %d chunks", ErrTransfer, c, k)
	}
	return int(c), int(k), nil
}

// decodeChunk returns the entries of a chunk frame; it must hold 1 to
// maxChunkFDs entries with valid sources and names and nothing else.
func decodeChunk(frame []byte) ([]entry, error) {
	rest, err := checkFrame(frame, kindChunk)
	if err != nil {
		return nil, err
	}
	if len(rest) < 2 {
		return nil, fmt.Errorf("fdstore: %w: chunk without a count", ErrTransfer)
	}
	n := int(binary.BigEndian.Uint16(rest))
	if n == 0 || n > maxChunkFDs {
		return nil, fmt.Errorf("fdstore: %w: chunk of %d listeners, want 1 to %d", ErrTransfer, n, maxChunkFDs)
	}
	rest = rest[2:]
	es := make([]entry, 0, n)
	for i := range n {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return nil, fmt.Errorf("fdstore: %w: chunk ends inside entry %d of %d", ErrTransfer, i+1, n)
		}
		e := entry{source: Source(rest[0]), name: string(rest[2 : 2+int(rest[1])])}
		if !e.source.valid() {
			return nil, fmt.Errorf("fdstore: %w: entry %d has source %d", ErrTransfer, i+1, rest[0])
		}
		if !validFDName(e.name) {
			return nil, fmt.Errorf("fdstore: %w: entry %d has invalid name %q", ErrTransfer, i+1, e.name)
		}
		es = append(es, e)
		rest = rest[2+len(e.name):]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("fdstore: %w: %d bytes after the last entry of a chunk", ErrTransfer, len(rest))
	}
	return es, nil
}
