package config

import (
	"fmt"
	"strings"
)

// The keys of each table, as the file spells them.
var (
	topKeys     = []string{"pidfile", "control_socket", "listen", "worker", "upgrade", "reload", "health", "rollout", "metrics"}
	listenKeys  = []string{"name", "network", "address", "mode", "owner", "group", "backlog"}
	workerKeys  = []string{"command", "count", "env", "dir", "user", "group", "ready", "start_timeout", "stop_signal", "stop_timeout", "stop_spread", "watchdog", "restart_delay", "restart_delay_max", "log_identifier"}
	upgradeKeys = []string{"commit", "soak", "timeout"}
	reloadKeys  = []string{"soak"}
	healthKeys  = []string{"check", "check_interval", "check_timeout", "check_failures"}
	rolloutKeys = []string{"strategy", "surge", "canary"}
	metricsKeys = []string{"address", "path"}
)

// unknown reports a key baton does not know, with a guess when one is close.
func (d *decoder) unknown(key string, line int, name string, known []string) {
	msg := "unknown key"
	if s := closest(name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.errorf(key, line, "%s", msg)
}

// unknownTop reports an unknown top-level key, and the section it belongs
// in when it is a key of one.
func (d *decoder) unknownTop(key string, line int, name string) {
	sections := []struct {
		header string
		keys   []string
	}{{"[worker]", workerKeys}, {"[upgrade]", upgradeKeys}, {"[health]", healthKeys}, {"[rollout]", rolloutKeys}, {"[metrics]", metricsKeys}, {"[[listen]]", listenKeys}}
	for _, s := range sections {
		if contains(s.keys, name) {
			d.errorf(key, line, "unknown key (it belongs under %s)", s.header)
			return
		}
	}
	d.unknown(key, line, name, topKeys)
}

// keyString writes a key path the way TOML would, quoting parts that are not
// bare keys.
func keyString(parts []string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p
		if p == "" || strings.IndexFunc(p, func(r rune) bool { return !isBareKeyRune(r) }) >= 0 {
			out[i] = quote(p)
		}
	}
	return strings.Join(out, ".")
}

func isBareKeyRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closest returns the element of known within edit distance 2 of s, if any.
func closest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(s, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
