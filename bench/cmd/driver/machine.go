//go:build linux

package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// machine describes where the benchmark ran.
type machine struct {
	cpus           int
	cpuModel       string
	memTotal       string
	free           string // free -h
	kernel         string
	goVersion      string
	batonVersion   string
	nginxVersion   string
	haproxyVersion string
	loadStart      string // /proc/loadavg
}

func machineInfo(d *driver) machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), loadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				m.memTotal = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	m.free = output("free", "-h")
	m.batonVersion = output(d.baton, "version")
	if d.nginx != "" {
		if b, err := d.nginxCommand("-v").CombinedOutput(); err == nil {
			m.nginxVersion = strings.TrimSpace(string(b))
		}
		if d.nginxRoot != "" {
			m.nginxVersion += " (in " + d.nginxRoot + ")"
		}
	}
	if d.haproxy != "" {
		m.haproxyVersion = haproxyVersion(output(d.haproxy, "-v"))
	}
	return m
}

// output runs a short command and returns what it printed, trimmed; "" if it failed.
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// loadAvg returns the 1, 5 and 15 minute load averages: other work on the machine during
// a run shows here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
