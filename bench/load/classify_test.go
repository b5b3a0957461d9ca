package load

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, Refused},
		{"reset on read", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, Reset},
		{"broken pipe on write", &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, Reset},
		{"EOF", io.EOF, EOF},
		{"unexpected EOF wrapped", fmt.Errorf("read response: %w", io.ErrUnexpectedEOF), EOF},
		{"deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, Timeout},
		{"other", errors.New("malformed HTTP response"), Other},
		{"nil", nil, Other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestKindStrings(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		s := k.String()
		if s == "unknown" || seen[s] {
			t.Errorf("Kind %d: string %q unknown or repeated", k, s)
		}
		seen[s] = true
	}
	if len(Kinds) != int(numKinds) {
		t.Errorf("Kinds lists %d kinds, want %d", len(Kinds), numKinds)
	}
}
