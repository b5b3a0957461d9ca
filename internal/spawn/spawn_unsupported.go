//go:build !linux

package spawn

import (
	"errors"
	"os"
	"runtime"
)

// Start fails: baton runs workers on Linux only.
func Start(a *Attr) (proc *os.Process, warning error, err error) {
	return nil, nil, errors.New("spawn: not implemented on " + runtime.GOOS + "/" + runtime.GOARCH)
}
