//go:build lab && linux

package labtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// entry is one journal entry of `journalctl -o json`.
type entry struct {
	F     map[string]string // the entry's fields with text values
	Attrs map[string]string // baton's and hello's log attributes: see attrsOf
}

// Message is the MESSAGE field.
func (e entry) Message() string { return e.F["MESSAGE"] }

// Msg is the log line's message without its attributes ("worker started").
func (e entry) Msg() string { return e.Attrs["msg"] }

// PID is the _PID field: the process that wrote the entry.
func (e entry) PID() int { n, _ := strconv.Atoi(e.F["_PID"]); return n }

// Attr returns one attribute ("" if absent).
func (e entry) Attr(k string) string { return e.Attrs[k] }

// AttrInt returns one numeric attribute (0 if absent).
func (e entry) AttrInt(k string) int { n, _ := strconv.Atoi(e.Attrs[k]); return n }

func (e entry) String() string {
	return fmt.Sprintf("[%s %s] %s", e.F["_PID"], e.F["SYSLOG_IDENTIFIER"], e.Message())
}

// attrRE finds key=value and key="quoted value" in a log line, as slog's text handler
// writes them and as baton's journal handler repeats them in MESSAGE.
var attrRE = regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|\S*)`)

// attrsOf collects the attributes of an entry: the key=value pairs in MESSAGE (the text
// handler's time, level, msg and the rest), then the BATON_* fields of baton's journal
// handler, lower-cased without the prefix (BATON_WORKER_PID is worker_pid). "msg" is the
// message without attributes in both forms.
func attrsOf(f map[string]string) map[string]string {
	a := map[string]string{}
	msg := f["MESSAGE"]
	ms := attrRE.FindAllStringSubmatchIndex(msg, -1)
	for _, m := range ms {
		k, v := msg[m[2]:m[3]], msg[m[4]:m[5]]
		if strings.HasPrefix(v, `"`) {
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
		}
		a[k] = v
	}
	if _, ok := a["msg"]; !ok {
		if len(ms) > 0 {
			a["msg"] = strings.TrimSpace(msg[:ms[0][0]])
		} else {
			a["msg"] = msg
		}
	}
	for k, v := range f {
		if name, ok := strings.CutPrefix(k, "BATON_"); ok {
			a[strings.ToLower(name)] = v
		}
	}
	return a
}

// cursor returns the journal's current end: entries written later come after it.
func cursor(t testing.TB) string {
	t.Helper()
	out := run(t, "journalctl", "-q", "-n", "1", "-o", "json", "--no-pager")
	var f struct {
		Cursor string `json:"__CURSOR"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &f); err != nil {
		t.Fatalf("journalctl -n 1 -o json: %v: %q", err, out)
	}
	return f.Cursor
}

// journal returns the entries of unit (its processes' and systemd's about it), after
// the cursor when one is given. Unit "" is every unit, and none: journald attributes a
// line to a unit by the sender's cgroup, which it reads from /proc after the line
// arrived, so the last lines of a process that exits right after them (a master's
// "master exited") may belong to no unit; look for those with unit "" and the pid.
func journal(t testing.TB, unit, after string) []entry {
	t.Helper()
	argv := []string{"journalctl", "-q", "-o", "json", "--no-pager"}
	if unit != "" {
		argv = append(argv, "-u", unit)
	}
	if after != "" {
		argv = append(argv, "--after-cursor", after)
	}
	return parseJournal(t, run(t, argv...))
}

func parseJournal(t testing.TB, out string) []entry {
	t.Helper()
	var es []entry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("journalctl -o json: %v: %q", err, sc.Text())
		}
		f := make(map[string]string, len(raw))
		for k, v := range raw {
			var s string
			var bs []int
			var ss []string
			switch {
			case json.Unmarshal(v, &s) == nil:
				f[k] = s
			case json.Unmarshal(v, &bs) == nil: // a binary value: an array of bytes
				b := make([]byte, len(bs))
				for i, c := range bs {
					b[i] = byte(c)
				}
				f[k] = string(b)
			case json.Unmarshal(v, &ss) == nil && len(ss) > 0: // a field given twice
				f[k] = ss[len(ss)-1]
			}
		}
		es = append(es, entry{F: f, Attrs: attrsOf(f)})
	}
	return es
}

// filter returns the entries for which keep is true.
func filter(es []entry, keep func(entry) bool) []entry {
	var out []entry
	for _, e := range es {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// withMsg keeps baton's (or hello's) lines with that message.
func withMsg(es []entry, msg string) []entry {
	return filter(es, func(e entry) bool { return e.Msg() == msg })
}

// containing keeps the entries whose MESSAGE contains s.
func containing(es []entry, s string) []entry {
	return filter(es, func(e entry) bool { return strings.Contains(e.Message(), s) })
}

// waitJournal waits until the unit's entries after the cursor satisfy ok, and returns them
// (unit "": every unit's, see journal).
func waitJournal(t testing.TB, timeout time.Duration, unit, after, what string, ok func([]entry) bool) []entry {
	t.Helper()
	var es []entry
	waitFor(t, timeout, what, func() (bool, string) {
		es = journal(t, unit, after)
		return ok(es), fmt.Sprintf("%d entries of %s", len(es), unit)
	})
	return es
}

// dumpJournal logs the unit's journal, for a failed test.
func dumpJournal(t testing.TB, unit string) {
	t.Helper()
	out, _, _ := lab.exec("", "journalctl", "-q", "-u", unit, "-o", "short-monotonic", "--no-pager")
	t.Logf("journal of %s:\n%s", unit, out)
}

// pidsIn returns the numbers captured by re in the MESSAGE of each entry.
func pidsIn(es []entry, re *regexp.Regexp) []int {
	var pids []int
	for _, e := range es {
		if m := re.FindStringSubmatch(e.Message()); m != nil {
			n, _ := strconv.Atoi(m[1])
			pids = append(pids, n)
		}
	}
	return pids
}

// waitLines waits until each named check is satisfied by some entry of unit (""; every
// unit's, see journal) after the cursor (lines of different transports, the workers' stream and baton's datagrams, reach
// journald in no fixed order), and returns the entries. It fails the test naming every
// check that never was.
func waitLines(t testing.TB, timeout time.Duration, unit, after string, checks map[string]func(entry) bool) []entry {
	t.Helper()
	var es []entry
	waitFor(t, timeout, "journal lines of "+unit, func() (bool, string) {
		es = journal(t, unit, after)
		var missing []string
		for name, ok := range checks {
			if !slices.ContainsFunc(es, ok) {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, "missing: " + strings.Join(missing, "; ")
	})
	return es
}
