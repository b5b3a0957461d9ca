//go:build linux

package logging

import (
	"log/slog"
	"strings"
	"testing"
)

// FuzzJournalEntry logs one attribute, inside an optional group, through the
// journal handler and parses the datagram back as journald would. Every
// field name must be valid, the attribute's value must come back byte for
// byte, and MESSAGE must hold no newline that the message did not.
func FuzzJournalEntry(f *testing.F) {
	f.Add("worker ready", "worker", "2", "")              // plain
	f.Add("upgrade", "event", "upgrade-started", "")      // known event: MESSAGE_ID
	f.Add("upgrade", "event", "upgrade-started", "child") // event in a group: no MESSAGE_ID
	f.Add("line one\nline two", "out", "a\nb\n", "")      // newlines: binary form
	f.Add("x", "", "dropped", "")                         // empty key: left out
	f.Add("x", "ünï-còdé.key", "v", "grüp")               // non-ASCII names
	f.Add("x", strings.Repeat("k", 80), "long name", "")  // name cut to 64
	f.Add("", "k", "", "")                                // empty message and value
	f.Add("x", "k", "MESSAGE=forged\nPRIORITY=0", "")     // injection attempt
	f.Add("x\x00y", "k\x00", "\xff\xfe", "")              // NUL and invalid UTF-8
	f.Add("x", "_leading", "v", "9digit")                 // names journald rejects on their own
	f.Add("x", "=", "=", "=")                             // separators as names
	f.Fuzz(func(t *testing.T, msg, key, value, group string) {
		c := &captureSender{}
		log := slog.New(newJournalHandler(c, nil, NewPrefixedHandler(failingWriter{}, nil))).WithGroup(group)
		log.Info(msg, key, value)
		if len(c.datagrams) != 1 {
			t.Fatalf("sent %d datagrams, want 1", len(c.datagrams))
		}
		fields, err := parseNative(c.datagrams[0])
		if err != nil {
			t.Fatalf("%v in %q", err, c.datagrams[0])
		}
		if len(fields) < 3 || fields[0].name != "MESSAGE" || fields[1] != (field{"PRIORITY", "6"}) ||
			fields[2] != (field{"SYSLOG_IDENTIFIER", "baton"}) {
			t.Fatalf("header got %v", fields)
		}
		message := fields[0].value
		if !strings.HasPrefix(message, msg) || strings.Count(message, "\n") != strings.Count(msg, "\n") {
			t.Errorf("MESSAGE %q does not start with %q or has extra newlines", message, msg)
		}
		rest := fields[3:]
		wantID := ""
		if key == "event" && group == "" {
			wantID = MessageID(value)
		}
		if wantID != "" {
			if len(rest) == 0 || rest[0] != (field{"MESSAGE_ID", wantID}) {
				t.Fatalf("got %v, want MESSAGE_ID=%s first", rest, wantID)
			}
			rest = rest[1:]
		}
		if key == "" {
			if len(rest) != 0 || message != msg {
				t.Errorf("empty key: got %v, MESSAGE %q", rest, message)
			}
			return
		}
		if len(rest) != 1 {
			t.Fatalf("got %v, want one BATON_ field", rest)
		}
		if !strings.HasPrefix(rest[0].name, fieldPrefix) || rest[0].value != value {
			t.Errorf("got %v, want BATON_…=%q", rest[0], value)
		}
		if !strings.HasPrefix(message[len(msg):], " ") {
			t.Errorf("MESSAGE %q: no space before the attribute", message)
		}
	})
}

// FuzzPrefixedLine logs one attribute through the prefixed handler: each
// record must reach the writer as one write holding exactly one line that
// starts with its priority, or journald would split it and lose the
// priority of the second half.
func FuzzPrefixedLine(f *testing.F) {
	f.Add("worker ready", "worker", "2", 0)     // plain info
	f.Add("a\nb", "out", "c\r\nd", 8)           // newlines in message and value, error level
	f.Add("<3>fake prefix", "k", "<7>", -4)     // a prefix inside the message
	f.Add("", "", "", 4)                        // everything empty, warn level
	f.Add("\xff\x00", "\u2028", "\u2029", -100) // invalid UTF-8, NUL, Unicode line separators
	f.Fuzz(func(t *testing.T, msg, key, value string, level int) {
		w := &writeRecorder{}
		l := slog.Level(level)
		log := slog.New(NewPrefixedHandler(w, &slog.HandlerOptions{Level: slog.Level(-1 << 20)}))
		log.Log(t.Context(), l, msg, key, value)
		if len(w.writes) != 1 {
			t.Fatalf("got %d writes, want 1", len(w.writes))
		}
		line := w.writes[0]
		if want := prefixes[prefixIndex(l)]; !strings.HasPrefix(line, want) {
			t.Errorf("line %q does not start with %s", line, want)
		}
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Errorf("line %q is not exactly one line", line)
		}
	})
}
