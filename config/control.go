package config

import (
	"os"
	"path/filepath"
	"strings"
)

// controlSocketName is the file name of the default control socket under
// $RUNTIME_DIRECTORY.
const controlSocketName = "control.sock"

// ControlPath returns the control socket the master listens on and the
// control verbs (`baton status`, reload, upgrade, rollback) dial:
// c.ControlSocket when it is set; else control.sock in the first directory
// of $RUNTIME_DIRECTORY (systemd sets it from RuntimeDirectory=, several
// directories separated by ':'); else "", meaning no control socket.
// ControlPath reads the environment on each call and checks nothing: a
// ControlSocket that Validate accepted is an absolute path or "@name" of at
// most 107 bytes, but the default is only as long and as absolute as
// $RUNTIME_DIRECTORY makes it.
func (c *Config) ControlPath() string {
	if c.ControlSocket != "" {
		return c.ControlSocket
	}
	dirs := os.Getenv("RUNTIME_DIRECTORY")
	first, _, _ := strings.Cut(dirs, ":")
	if first == "" {
		return ""
	}
	return filepath.Join(first, controlSocketName)
}

// isAbstract reports whether a socket address names a Linux abstract socket
// ("@name"), which has no file and so no directory to be relative to.
func isAbstract(addr string) bool {
	return strings.HasPrefix(addr, "@")
}
