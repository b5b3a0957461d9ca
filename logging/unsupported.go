//go:build !linux

package logging

import (
	"log/slog"
	"os"
)

// New returns a slog.TextHandler logger on stderr and Text: off Linux there
// is no journald to detect.
func New(stderr *os.File, level slog.Leveler) (*slog.Logger, Mode) {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), Text
}
