package fdstore

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseListenEnv checks that parseListenEnv never panics, returns one
// valid name per fd, and that for a named set LISTEN_FDNAMES round-trips:
// joining the names gives the variable back.
func FuzzParseListenEnv(f *testing.F) {
	f.Add("42", "3", "web:web:admin", true) // a socket unit with two ListenStream= and one more
	f.Add("42", "2", "", false)             // no LISTEN_FDNAMES: "unknown" each
	f.Add("42", "1", "", true)              // empty LISTEN_FDNAMES for one fd: malformed
	f.Add("42", "3", "a::b", true)          // empty name in the middle: malformed
	f.Add("41", "3", "a:b:c", true)         // another process's fds: ignored
	f.Add("+42", "03", "a:b:c", true)       // signs and leading zeros
	f.Add("42", "65537", "", false)         // above the fd count limit
	f.Add("42", "1", "my sock", true)       // systemd allows spaces in names
	f.Add("42", "1", "a\x00b", true)        // a control character
	f.Fuzz(func(t *testing.T, pid, fds, names string, namesSet bool) {
		env := listenEnv{pid: pid, pidSet: true, fds: fds, names: names, namesSet: namesSet}
		got, err := parseListenEnv(env, 42)
		if err != nil {
			if got != nil {
				t.Fatalf("names %q with error %v", got, err)
			}
			return
		}
		for _, n := range got {
			if !validFDName(n) {
				t.Fatalf("invalid name %q accepted", n)
			}
		}
		if namesSet && len(got) > 0 && strings.Join(got, ":") != names {
			t.Fatalf("round trip: %q gave %q", names, got)
		}
	})
}

// FuzzDecodeHeader checks that decodeHeader never panics and that what it
// accepts encodes back to the same bytes.
func FuzzDecodeHeader(f *testing.F) {
	f.Add(encodeHeader(0, 0))                                                      // an empty set
	f.Add(encodeHeader(300, 2))                                                    // 300 listeners in two chunks
	f.Add(encodeHeader(300, 1))                                                    // more than SCM_MAX_FD in one chunk: malformed
	f.Add(encodeHeader(1<<16+1, 1<<16+1))                                          // above the listener limit
	f.Add(encodeChunk([]entry{{Opened, "web"}}))                                   // a chunk where a header belongs
	f.Add([]byte{0, 0, 0, 14, 'B', 'T', 'F', 'D', 2, 'H', 0, 0, 0, 0, 0, 0, 0, 0}) // version 2
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})                                          // a length far beyond the frame
	f.Fuzz(func(t *testing.T, frame []byte) {
		count, chunks, err := decodeHeader(frame)
		if err != nil {
			return
		}
		if back := encodeHeader(count, chunks); !bytes.Equal(back, frame) {
			t.Fatalf("round trip: %x gave (%d, %d), encoded %x", frame, count, chunks, back)
		}
	})
}

// FuzzDecodeChunk checks that decodeChunk never panics, accepts only valid
// names and sources, and that what it accepts encodes back to the same bytes.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(encodeChunk([]entry{{Opened, "web"}}))                                       // one listener
	f.Add(encodeChunk([]entry{{Activated, "web"}, {Activated, "web"}, {Opened, "a"}})) // a shared name
	f.Add(encodeChunk([]entry{{Opened, strings.Repeat("n", 255)}}))                    // the longest name
	f.Add(encodeChunk([]entry{{Opened, "a:b"}}))                                       // a name with ':': malformed
	f.Add(encodeChunk([]entry{{Source(7), "web"}}))                                    // an unknown source
	f.Add(encodeChunk(nil))                                                            // no entries: malformed
	f.Add(encodeChunk([]entry{{Opened, "web"}})[:10])                                  // cut short
	f.Fuzz(func(t *testing.T, frame []byte) {
		es, err := decodeChunk(frame)
		if err != nil {
			return
		}
		for _, e := range es {
			if !e.source.valid() || !validFDName(e.name) {
				t.Fatalf("accepted entry %+v", e)
			}
		}
		if back := encodeChunk(es); !bytes.Equal(back, frame) {
			t.Fatalf("round trip: %x gave %+v, encoded %x", frame, es, back)
		}
	})
}
