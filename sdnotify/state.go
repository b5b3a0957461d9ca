package sdnotify

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by ParseState (and so by Server.Receive) when a
// message is not newline-separated KEY=VALUE lines.
var ErrMalformed = errors.New("sdnotify: malformed notify message")

// ParseState parses a notify message: lines separated by "\n", each
// KEY=VALUE. Empty lines are skipped. KEY is one or more of A-Z, 0-9 and '_';
// VALUE is everything after the first '=' and may contain '=' but no NUL.
// Any other line makes ParseState return nil and an error wrapping
// ErrMalformed that names the line. A message with no fields is valid and
// gives (nil, nil).
func ParseState(b []byte) ([]Field, error) {
	var fields []Field
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		key, value, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return nil, fmt.Errorf("%w: line %d %.40q: no '='", ErrMalformed, n, line)
		}
		if !validKey(key) {
			return nil, fmt.Errorf("%w: line %d %.40q: key must be A-Z, 0-9, '_'", ErrMalformed, n, line)
		}
		if bytes.IndexByte(value, 0) >= 0 {
			return nil, fmt.Errorf("%w: line %d %.40q: NUL in value", ErrMalformed, n, line)
		}
		fields = append(fields, Field{Key: string(key), Value: string(value)})
	}
	return fields, nil
}

func validKey(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	for _, c := range key {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// FormatState writes fields as KEY=VALUE lines joined by "\n", with no
// trailing newline. It does not validate: fields that came from ParseState
// parse back to the same fields; other fields (a key ParseState refuses, a
// value holding "\n") may not.
func FormatState(fields []Field) []byte {
	var b []byte
	for i, f := range fields {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, f.Key...)
		b = append(b, '=')
		b = append(b, f.Value...)
	}
	return b
}
