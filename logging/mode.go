package logging

import "strconv"

// Mode is the output New chose.
type Mode int

const (
	// Text is plain slog text lines on stderr, for a terminal.
	Text Mode = iota
	// Prefixed is slog text lines on stderr, each prefixed with its syslog
	// priority "<N>" (sd-daemon(3)), for a pipe, a file or a journal stream
	// that cannot be upgraded to the native protocol.
	Prefixed
	// Journal is journald's native protocol: one datagram per line, with
	// structured fields.
	Journal
)

// String returns "text", "prefixed" or "journal".
func (m Mode) String() string {
	switch m {
	case Text:
		return "text"
	case Prefixed:
		return "prefixed"
	case Journal:
		return "journal"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}
