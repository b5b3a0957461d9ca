package load

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Kind is the class of a failed request.
type Kind int

// The kinds of failure, in the order reports list them.
const (
	// Refused: the connection was refused (ECONNREFUSED): nothing listened.
	Refused Kind = iota
	// Reset: the peer reset the connection (ECONNRESET), or it had already
	// and a write failed (EPIPE).
	Reset
	// EOF: the connection was closed before a complete response.
	EOF
	// Timeout: no complete response within the request timeout.
	Timeout
	// Non2xx: a complete response whose status is not 2xx.
	Non2xx
	// Other: any other error (a malformed response, a local error).
	Other
	numKinds
)

// Kinds lists every Kind, in report order.
var Kinds = []Kind{Refused, Reset, EOF, Timeout, Non2xx, Other}

func (k Kind) String() string {
	switch k {
	case Refused:
		return "refused"
	case Reset:
		return "reset"
	case EOF:
		return "EOF"
	case Timeout:
		return "timeout"
	case Non2xx:
		return "non-2xx"
	case Other:
		return "other"
	}
	return "unknown"
}

// Classify returns the kind of failure err is. A deadline counts as a
// timeout whatever else it wraps; nil is Other (the caller has a status to
// judge, not an error).
func Classify(err error) Kind {
	var ne net.Error
	switch {
	case err == nil:
		return Other
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return EOF
	}
	return Other
}
