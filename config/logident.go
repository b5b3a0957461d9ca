package config

import (
	"fmt"
	"path/filepath"
	"unicode"
	"unicode/utf8"
)

// A log identifier is written into the header of a journal stream, one line of it, and
// shown by journalctl and syslog as the program's name: so it is short, one word, and
// printable. systemd checks nothing of SyslogIdentifier=; a newline there would end the
// header early, and what followed it would be read as the header's next fields.

// JournalIdentifier returns the SYSLOG_IDENTIFIER of the workers' journal streams: the
// log_identifier key, or else the base name of the program (command[0]: "gunicorn" for
// "/usr/bin/gunicorn"), with every character a log identifier may not hold replaced by
// "_" and cut to MaxLogIdent bytes. It is "" only when the command is empty.
func (w *Worker) JournalIdentifier() string {
	if w.LogIdentifier != "" {
		return w.LogIdentifier
	}
	if len(w.Command) == 0 || w.Command[0] == "" {
		return ""
	}
	var out []byte
	for _, r := range filepath.Base(w.Command[0]) { // invalid UTF-8 comes as RuneError
		if !identRune(r) {
			r = '_'
		}
		if len(out)+utf8.RuneLen(r) > MaxLogIdent {
			break
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// checkLogIdentifier says what is wrong with s as a log identifier, if anything.
func checkLogIdentifier(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("must not be empty")
	case len(s) > MaxLogIdent:
		return fmt.Errorf("must be at most %d bytes (got %d)", MaxLogIdent, len(s))
	case !utf8.ValidString(s):
		return fmt.Errorf("must be UTF-8 (got %q)", s)
	}
	for _, r := range s {
		if !identRune(r) {
			return fmt.Errorf("must be printable, without spaces or control characters (got %q)", s)
		}
	}
	return nil
}

// identRune reports whether a log identifier may hold r.
func identRune(r rune) bool {
	return r != utf8.RuneError && unicode.IsPrint(r) && !unicode.IsSpace(r)
}
