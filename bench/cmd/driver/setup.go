//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// setup resolves the binaries (absolute: baton re-executes itself, nginx argv[0]), finds
// or installs nginx and makes the scratch directory.
func (d *driver) setup(installNginx bool, work string) error {
	var err error
	for _, p := range []*string{&d.baton, &d.hello} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
		if _, err := os.Stat(*p); err != nil {
			return fmt.Errorf("%w (run make build first)", err)
		}
	}
	if d.has("systemd") {
		if d.labScript, err = filepath.Abs(d.labScript); err != nil {
			return err
		}
		if d.unitsDir, err = filepath.Abs(d.unitsDir); err != nil {
			return err
		}
	}
	cycles := d.has("cycles") || d.has("starvation")
	if slices.Contains(d.systems, "nginx") && cycles {
		if d.nginxRoot != "" {
			if d.nginxRoot, d.nginx, err = findRootNginx(d.nginxRoot); err != nil {
				return err
			}
		} else if d.nginx, err = findTool(d.nginx, "nginx", "nginx-light", installNginx); err != nil {
			return err
		}
	}
	if slices.Contains(d.systems, "haproxy") && cycles {
		if d.haproxy, err = findTool(d.haproxy, "haproxy", "haproxy", installNginx); err != nil {
			return err
		}
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "baton-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	// nginx workers run as nobody: they must be able to reach their prefix.
	os.Chmod(work, 0o755)
	d.work = work
	return nil
}

// findTool finds an anchor's binary (given, else name in PATH or /usr/sbin), or installs
// Debian's package pkg with apt-get when install is set.
func findTool(given, name, pkg string, install bool) (string, error) {
	if given != "" {
		return filepath.Abs(given)
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	sbin := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	if !install {
		return "", fmt.Errorf("%s not found; install Debian's %s, or leave %s out of -systems", name, pkg, name)
	}
	fmt.Fprintf(os.Stderr, "driver: %s missing: apt-get install -y %s\n", name, pkg)
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", pkg}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	return sbin, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		var n int
		if _, err := fmt.Sscanf(f, "%d", &n); err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want a list of positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}
