package config

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The typed getters below check a node's TOML type and convert it; on a
// mismatch they report an error at the node's line and return false or the
// zero value.

func (d *decoder) table(key string, v *node, want string) bool {
	if v.kind != unstable.Table {
		d.errorf(key, v.line, "must be %s (got %s)", want, v.kindName())
		return false
	}
	return true
}

func (d *decoder) str(key string, v *node) (string, bool) {
	if v.kind != unstable.String {
		d.errorf(key, v.line, "must be a string (got %s)", v.kindName())
		return "", false
	}
	return v.text, true
}

func (d *decoder) strings(key string, v *node) ([]string, bool) {
	if v.kind != unstable.Array {
		d.errorf(key, v.line, "must be an array of strings such as [\"/usr/bin/server\", \"--flag\"] (got %s)", v.kindName())
		return nil, false
	}
	out := make([]string, 0, len(v.items))
	ok := true
	for i, item := range v.items {
		if item.kind != unstable.String {
			d.errorf(fmt.Sprintf("%s[%d]", key, i), item.line, "must be a string (got %s)", item.kindName())
			ok = false
			continue
		}
		out = append(out, item.text)
	}
	return out, ok
}

func (d *decoder) integer(key string, v *node) (int, bool) {
	if v.kind != unstable.Integer {
		d.errorf(key, v.line, "must be an integer (got %s)", v.kindName())
		return 0, false
	}
	n, err := strconv.ParseInt(v.text, 0, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		d.errorf(key, v.line, "integer %s out of range", v.text)
		return 0, false
	}
	return int(n), true
}

func (d *decoder) duration(key string, v *node, dst *time.Duration) {
	if v.kind != unstable.String {
		d.errorf(key, v.line, "must be a duration string such as \"5s\" or \"100ms\" (got %s)", v.kindName())
		return
	}
	dur, err := time.ParseDuration(v.text)
	if err != nil {
		d.errorf(key, v.line, "must be a duration such as \"5s\" or \"100ms\" (got %q)", v.text)
		return
	}
	*dst = dur
}

func (d *decoder) mode(key string, v *node) os.FileMode {
	const want = "must be a string of octal digits such as \"0660\""
	if v.kind != unstable.String {
		d.errorf(key, v.line, "%s (got %s)", want, v.kindName())
		return 0
	}
	m, err := strconv.ParseUint(v.text, 8, 32)
	if err != nil {
		d.errorf(key, v.line, "%s (got %q)", want, v.text)
		return 0
	}
	if m > maxSocketMode {
		d.errorf(key, v.line, "must be at most \"0777\" (got %q)", v.text)
		return 0
	}
	return os.FileMode(m)
}
