//go:build !linux

package fdstore

import (
	"errors"
	"fmt"
	"net"
)

// Activation is Linux only; elsewhere it fails with errors.ErrUnsupported.
func Activation(unsetEnv bool) ([]*Listener, error) {
	return nil, fmt.Errorf("fdstore: socket activation: %w", errors.ErrUnsupported)
}

// Open is Linux only; elsewhere it fails with errors.ErrUnsupported.
func Open(s Spec) (*Listener, error) {
	return nil, fmt.Errorf("fdstore: listen %q on %s %s: %w", s.Name, s.Network, s.Address, errors.ErrUnsupported)
}

// Send is Linux only; elsewhere it fails with errors.ErrUnsupported.
func Send(conn *net.UnixConn, ls []*Listener) error {
	return fmt.Errorf("fdstore: send: %w", errors.ErrUnsupported)
}

// Receive is Linux only; elsewhere it fails with errors.ErrUnsupported.
func Receive(conn *net.UnixConn) ([]*Listener, error) {
	return nil, fmt.Errorf("fdstore: receive: %w", errors.ErrUnsupported)
}

type permChange struct{}

func (l *Listener) reusePerms(s Spec) (*permChange, error) {
	return nil, fmt.Errorf("fdstore: set the mode of %s: %w", s.Address, errors.ErrUnsupported)
}

func (c *permChange) apply() error { return errors.ErrUnsupported }
func (c *permChange) close()       {}
