package config

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, located like a compiler error:
// File and Line of the key when it came from a file, Key the dotted TOML key
// ("worker.count", "listen[0].mode") or the flag ("--workers") it came from.
type Error struct {
	File string // absolute path of the config file; "" for flags
	Line int    // 1-based line of the key; 0 when unknown
	Key  string // TOML key or flag; "" when the problem is the whole file
	Msg  string // what is wrong, and the value that is

	err error // underlying error (reading the file), for errors.Is
}

// Error returns "file:line: key: msg", leaving out the parts that are empty
// ("--listen \"x\": msg", "file: msg"). Without a file a line reads "line 3".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the error that caused this one (an *fs.PathError when the
// file could not be read), or nil.
func (e *Error) Unwrap() error { return e.err }

// Errors returns every *Error held in err: err itself, or each error joined
// into it. Load, Parse, Validate and Apply return either one *Error or
// several joined with errors.Join, in file order; errors.As finds the first.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// errorList collects problems and turns them into one error.
type errorList []*Error

func (l *errorList) add(e *Error) { *l = append(*l, e) }

// err returns nil, the only error, or all of them joined, sorted by line
// (errors without a line, from flags or missing keys, last).
func (l errorList) err() error {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Line, l[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}
