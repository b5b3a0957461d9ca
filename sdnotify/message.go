package sdnotify

import "errors"

// MaxMessageSize is the largest datagram a Server accepts, in bytes.
const MaxMessageSize = 64 << 10

var (
	// ErrTruncated is wrapped by Server.Receive for a datagram longer than
	// MaxMessageSize or with more control data than fits (MSG_TRUNC,
	// MSG_CTRUNC). Nothing of it is parsed; its descriptors are closed.
	ErrTruncated = errors.New("sdnotify: notify message truncated")
	// ErrNoCredentials is wrapped by Server.Receive for a datagram that came
	// without SCM_CREDENTIALS, so its sender is unknown. The Server asks the
	// kernel for credentials on every datagram, so this is not expected.
	ErrNoCredentials = errors.New("sdnotify: notify message without sender credentials")
)

// Field is one KEY=VALUE line of a notify message.
type Field struct {
	Key, Value string
}

// Message is one datagram received by a Server.
type Message struct {
	// PID, UID and GID are the sender's credentials as the kernel reports
	// them (SCM_CREDENTIALS), not as the sender claims. PID is 0 when the
	// sender lives in a PID namespace that cannot see ours.
	PID      int32
	UID, GID uint32
	// Fields are the message's lines in the order sent.
	Fields []Field
	// FDs is how many file descriptors came with the message. The server has
	// already closed them.
	FDs int
}

// Get returns the value of the last field named key, and whether there was
// one. The last one wins, as in systemd.
func (m Message) Get(key string) (string, bool) {
	for i := len(m.Fields) - 1; i >= 0; i-- {
		if m.Fields[i].Key == key {
			return m.Fields[i].Value, true
		}
	}
	return "", false
}
