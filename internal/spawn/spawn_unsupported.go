//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le))

package spawn

import (
	"errors"
	"os"
	"runtime"
)

// Start fails: this architecture has no implementation.
func Start(a *Attr) (*os.Process, error) {
	return nil, errors.New("spawn: not implemented on " + runtime.GOOS + "/" + runtime.GOARCH)
}
