//go:build !linux

package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// errNotLinux is wrapped by New, Open and Listen off Linux.
var errNotLinux = fmt.Errorf("sdnotify: needs Linux: %w", errors.ErrUnsupported)

// Notifier sends notify messages; off Linux none can be opened, and a nil
// *Notifier is a no-op.
type Notifier struct{}

// New returns an error wrapping os.ErrNotExist when $NOTIFY_SOCKET is unset,
// and one wrapping errors.ErrUnsupported otherwise.
func New() (*Notifier, error) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET is not set: %w", os.ErrNotExist)
	}
	return nil, errNotLinux
}

// Open returns an error wrapping errors.ErrUnsupported.
func Open(addr string) (*Notifier, error) { return nil, errNotLinux }

// Addr returns "".
func (n *Notifier) Addr() string { return "" }

// Notify does nothing.
func (n *Notifier) Notify(state ...string) error { return nil }

// NotifyWithFDs does nothing.
func (n *Notifier) NotifyWithFDs(fds []int, state ...string) error { return nil }

// NotifyWithFiles does nothing.
func (n *Notifier) NotifyWithFiles(files []*os.File, state ...string) error { return nil }

// Barrier does nothing.
func (n *Notifier) Barrier(timeout time.Duration) error { return nil }

// Close does nothing.
func (n *Notifier) Close() error { return nil }

// MonotonicNow returns MonotonicUsec(0): off Linux no Notifier exists to
// send it.
func MonotonicNow() string { return MonotonicUsec(0) }

// Server is a worker notify socket; off Linux none can be opened.
type Server struct{}

// Listen returns an error wrapping errors.ErrUnsupported.
func Listen(addr string) (*Server, error) { return nil, errNotLinux }

// Addr returns "".
func (s *Server) Addr() string { return "" }

// Receive returns an error wrapping errors.ErrUnsupported.
func (s *Server) Receive() (Message, error) { return Message{}, errNotLinux }

// Close does nothing.
func (s *Server) Close() error { return nil }
