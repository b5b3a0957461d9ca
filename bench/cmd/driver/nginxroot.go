//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A newer nginx than the host's (-nginx-root): Debian 13's, installed in a root tree of its
// own (a copy of the systemd lab's trixie image, `chroot DIR apt-get install nginx`), run
// with chroot in the host's PID and network namespaces. The driver watches it as it does
// Debian 12's (pidfds, /proc, the pid file); on USR2 nginx re-executes /usr/sbin/nginx
// inside the chroot. Its prefix is a directory under DIR/tmp, named to nginx by its path
// inside the chroot.

// nginxBase is the directory under which each nginx gets its prefix.
func (d *driver) nginxBase() string {
	if d.nginxRoot == "" {
		return d.work
	}
	return filepath.Join(d.nginxRoot, "tmp")
}

// inNginxRoot is hostPath as nginx sees it: without the chroot's directory.
func (d *driver) inNginxRoot(hostPath string) string {
	if d.nginxRoot == "" {
		return hostPath
	}
	return "/" + strings.TrimLeft(strings.TrimPrefix(hostPath, d.nginxRoot), "/")
}

// nginxCommand runs nginx with args, in the chroot if there is one.
func (d *driver) nginxCommand(args ...string) *exec.Cmd {
	if d.nginxRoot == "" {
		return exec.Command(d.nginx, args...)
	}
	return exec.Command("/usr/sbin/chroot", append([]string{d.nginxRoot, d.nginx}, args...)...)
}

// findRootNginx checks the chroot's nginx: /usr/sbin/nginx inside it.
func findRootNginx(root string) (string, string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/nginx")); err != nil {
		return "", "", fmt.Errorf("-nginx-root %s: %w (chroot %s apt-get install nginx)", root, err, root)
	}
	return root, "/usr/sbin/nginx", nil
}
