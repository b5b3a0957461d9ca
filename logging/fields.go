package logging

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// fieldPrefix starts the journal field name of every attribute.
const fieldPrefix = "BATON_"

// maxFieldName is the longest field name journald accepts (64); longer
// names are cut.
const maxFieldName = 64

// appendFieldName appends to b the upper-cased form of s: ASCII letters
// upper-cased, digits and '_' kept, every other rune replaced by one '_'.
func appendFieldName(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z':
			b = append(b, byte(r-'a'+'A'))
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	return b
}

// appendAttrField appends the journal field name of an attribute named key
// inside the groups that fieldGroups spells ("BATON_" then each group
// upper-cased and followed by '_', as WithGroup builds it): fieldGroups, then
// key upper-cased with every rune outside [A-Z0-9_] replaced by '_', the
// whole cut to 64 bytes.
func appendAttrField(b []byte, fieldGroups, key string) []byte {
	start := len(b)
	b = appendFieldName(append(b, fieldGroups...), key)
	if len(b)-start > maxFieldName {
		b = b[:start+maxFieldName]
	}
	return b
}

// appendGroup returns fieldGroups with group added.
func appendGroup(fieldGroups, group string) string {
	return string(append(appendFieldName([]byte(fieldGroups), group), '_'))
}

// appendField appends one field in journald's native protocol: NAME=value
// and a newline, or, when value holds a newline, the binary form: NAME, a
// newline, the length of value as a 64-bit little-endian integer, value and
// a newline. name must be a valid field name.
func appendField[V string | []byte](b []byte, name string, value V) []byte {
	return appendFieldValue(append(b, name...), value)
}

// appendFieldValue appends what follows a field's name: see appendField.
func appendFieldValue[V string | []byte](b []byte, value V) []byte {
	if !hasNewline(value) {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

func hasNewline[V string | []byte](value V) bool {
	for i := 0; i < len(value); i++ {
		if value[i] == '\n' {
			return true
		}
	}
	return false
}

// valueString returns the text of a resolved, non-group value: strings as
// they are, times in RFC 3339 with nanoseconds, errors by their Error
// method, encoding.TextMarshalers by MarshalText, []byte as text, anything
// else as fmt's %+v.
func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return x.Error()
		case encoding.TextMarshaler:
			t, err := x.MarshalText()
			if err != nil {
				return "!ERROR:" + err.Error()
			}
			return string(t)
		case []byte:
			return string(x)
		}
		return fmt.Sprintf("%+v", v.Any())
	}
	return v.String()
}

// appendText appends s to b, quoted with strconv.Quote when it is empty or
// holds a space, '=', '"' or a rune that is not printable, as slog's text
// handler does.
func appendText(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '=' || r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
