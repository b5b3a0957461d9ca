package config

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// node is a TOML value that remembers the line it was given on. go-toml's
// unstable parser checks the syntax and says where each key is, but leaves
// tables unassembled and does not check TOML's rules on defining a key or a
// table twice; buildTree assembles the tree and checks those rules.
type node struct {
	line   int           // line of the key that names it (of an array element: its own)
	kind   unstable.Kind // String, Integer, Float, Bool, a date kind, Array, ArrayTable or Table
	origin origin        // how the file made it
	text   string        // String: the decoded string; other scalars: the raw text

	items []*node // Array, ArrayTable ([[x]] tables; each a Table)

	keys   []string         // Table: keys in document order
	fields map[string]*node // Table
}

// origin is how a node came to be, which decides what may define it again
// (https://toml.io/en/v1.0.0#table): a table once by its own [header], even
// after a longer header implied it; dotted keys extend only the tables
// dotted keys made; nothing extends a value.
type origin uint8

const (
	byValue  origin = iota // a value: scalar, array or { inline table }
	byHeader               // [a.b] made b; [[a]] made a and each of its tables
	byPrefix               // [a.b] made a, which [a] may still define
	byDotted               // a.b = 1 made a
)

func newTable(line int, o origin) *node {
	return &node{line: line, kind: unstable.Table, origin: o, fields: map[string]*node{}}
}

// kindName names a node's type in error messages.
func (n *node) kindName() string {
	switch n.kind {
	case unstable.String:
		return "string"
	case unstable.Integer:
		return "integer"
	case unstable.Float:
		return "float"
	case unstable.Bool:
		return "boolean"
	case unstable.Array:
		return "array"
	case unstable.ArrayTable:
		return "array of tables"
	case unstable.Table:
		return "table"
	default:
		return "date-time"
	}
}

// buildTree parses data into a tree of nodes, rejecting everything TOML
// forbids with go-toml's own messages: syntax, keys and tables defined
// twice, integers out of range, dates that do not exist. Time and memory
// are linear in len(data) (n log n for the line numbers).
func buildTree(path string, data []byte) (*node, *Error) {
	b := &builder{path: path, data: data, lines: newLineIndex(data)}
	root := newTable(0, byPrefix)
	cur := root
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.ArrayTable && e.Kind != unstable.KeyValue {
			continue
		}
		parts, line := b.keyParts(e.Key())
		var err error
		if e.Kind == unstable.KeyValue {
			err = b.keyValue(cur, parts, line, e.Value())
		} else {
			cur, err = root.header(parts, e.Kind == unstable.ArrayTable, line)
		}
		if err != nil {
			return nil, &Error{File: path, Line: line, Key: keyString(parts), Msg: err.Error()}
		}
		// As go-toml does: values are decoded once the keys are known good.
		if e.Kind == unstable.KeyValue {
			if serr := b.scalars(e.Value()); serr != nil {
				return nil, serr
			}
		}
	}
	if err := p.Error(); err != nil {
		return nil, b.syntaxError(err)
	}
	return root, nil
}

// builder holds what buildTree needs to say where a problem is.
type builder struct {
	path  string
	data  []byte
	lines lineIndex
}

// keyParts returns the parts of a dotted key and the line it starts on.
func (b *builder) keyParts(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = b.lines.at(int(k.Raw.Offset))
		}
		parts = append(parts, string(k.Data))
	}
	return parts, line
}

// keyValue sets the (dotted) key parts in t to the value v.
func (b *builder) keyValue(t *node, parts []string, line int, v *unstable.Node) error {
	parent, err := t.place(parts, line)
	if err != nil {
		return err
	}
	n, err := b.value(v, line)
	if err != nil {
		return err
	}
	parent.add(parts[len(parts)-1], n)
	return nil
}

// value converts a value expression. line is used for values that carry no
// position of their own (arrays).
func (b *builder) value(v *unstable.Node, line int) (*node, error) {
	switch v.Kind {
	case unstable.Array:
		n := &node{line: line, kind: unstable.Array, items: make([]*node, 0, children(v))}
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			cline := line
			if c.Raw.Length > 0 {
				cline = b.lines.at(int(c.Raw.Offset))
			}
			item, err := b.value(c, cline)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		}
		return n, nil
	case unstable.InlineTable:
		size := children(v)
		n := &node{line: line, kind: unstable.Table, origin: byValue, keys: make([]string, 0, size), fields: make(map[string]*node, size)}
		it := v.Children()
		for it.Next() {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			parts, kline := b.keyParts(kv.Key())
			if err := b.keyValue(n, parts, kline, kv.Value()); err != nil {
				return nil, err
			}
		}
		return n, nil
	default:
		return &node{line: line, kind: v.Kind, text: string(v.Data)}, nil
	}
}

// children counts the elements of an array or the keys of an inline table
// (and any comments), so that the node holding them is allocated once.
func children(v *unstable.Node) int {
	n := 0
	for it := v.Children(); it.Next(); {
		n++
	}
	return n
}

// The errors below are go-toml's, word for word, so that a file reads the
// same whether go-toml or baton finds the problem.

// header finds or makes the table named by a [a.b] header, or appends a
// table to the array of tables named by [[a.b]], and returns the table.
func (t *node) header(parts []string, array bool, line int) (*node, error) {
	parent := t
	for _, p := range parts[:len(parts)-1] {
		n, ok := parent.fields[p]
		switch {
		case !ok:
			n = newTable(line, byPrefix)
			parent.add(p, n)
		case n.kind == unstable.ArrayTable:
			n = n.items[len(n.items)-1] // TOML: its last table so far
		case n.origin == byValue:
			return nil, fmt.Errorf("key %s already exists as a value", p)
		}
		parent = n
	}
	last := parts[len(parts)-1]
	n, ok := parent.fields[last]
	if array {
		switch {
		case !ok:
			n = &node{line: line, kind: unstable.ArrayTable, origin: byHeader}
			parent.add(last, n)
		case n.kind != unstable.ArrayTable:
			return nil, fmt.Errorf("key %s already exists as a %s, but should be an array table", last, n.originName())
		}
		elem := newTable(line, byHeader)
		n.items = append(n.items, elem)
		return elem, nil
	}
	switch {
	case !ok:
		n = newTable(line, byHeader)
		parent.add(last, n)
	case n.kind == unstable.ArrayTable:
		return nil, fmt.Errorf("table %s already exists as an array of tables", last)
	case n.origin == byValue:
		return nil, fmt.Errorf("key %s should be a table, not a value", last)
	case n.origin == byDotted:
		return nil, fmt.Errorf("table %s already exists as defined by a dotted key", last)
	case n.origin == byHeader:
		return nil, fmt.Errorf("table %s already exists", last)
	default: // byPrefix: now defined by its own header
		n.origin = byHeader
	}
	return n, nil
}

// place checks that the (dotted) key parts may be set in t, makes the
// tables a dotted key implies, and returns the table that gets the last part.
func (t *node) place(parts []string, line int) (*node, error) {
	parent := t
	for _, p := range parts[:len(parts)-1] {
		n, ok := parent.fields[p]
		switch {
		case !ok:
			n = newTable(line, byDotted)
			parent.add(p, n)
		case n.origin != byDotted:
			return nil, fmt.Errorf("key %s is already defined", p)
		}
		parent = n
	}
	if last := parts[len(parts)-1]; parent.fields[last] != nil {
		return nil, fmt.Errorf("key %s is already defined", last)
	}
	return parent, nil
}

// originName names how a node was made, as go-toml does.
func (n *node) originName() string {
	switch n.origin {
	case byValue:
		return "value"
	case byDotted:
		return "kv-table"
	default:
		return "table"
	}
}

func (t *node) add(key string, v *node) {
	t.keys = append(t.keys, key)
	t.fields[key] = v
}

// scalars returns an error at the first scalar in v that is well formed but
// has no value: an integer out of range, a date that does not exist.
func (b *builder) scalars(v *unstable.Node) *Error {
	switch v.Kind {
	case unstable.Array, unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			c := it.Node()
			switch c.Kind {
			case unstable.Comment:
				continue
			case unstable.KeyValue:
				c = c.Value()
			}
			if err := b.scalars(c); err != nil {
				return err
			}
		}
		return nil
	case unstable.String, unstable.Bool:
		return nil
	case unstable.Integer:
		if shortDecimal(v.Data) {
			return nil
		}
	}
	// Let go-toml decode this one value: its checks and its words.
	doc := append([]byte("v="), v.Data...)
	var m map[string]any
	err := toml.Unmarshal(doc, &m)
	if err == nil {
		return nil
	}
	e := &Error{File: b.path, Line: b.lines.at(int(v.Raw.Offset)), Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		e.Key = keyString(de.Key())
	}
	return e
}

// shortDecimal reports whether an integer the parser accepted is decimal
// with at most 18 digits, and so fits in an int64.
func shortDecimal(b []byte) bool {
	digits := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c != '_' && c != '+' && c != '-':
			return false // 0x, 0o, 0b
		}
	}
	return digits <= 18
}

// syntaxError turns a parser error into an *Error at its line.
func (b *builder) syntaxError(err error) *Error {
	var pe *unstable.ParserError
	if !errors.As(err, &pe) {
		return &Error{File: b.path, Msg: err.Error()}
	}
	e := &Error{File: b.path, Key: keyString(pe.Key), Msg: pe.Message}
	// The highlight is a slice of data: its capacity says where.
	if off := cap(b.data) - cap(pe.Highlight); off >= 0 && off <= len(b.data) {
		e.Line = b.lines.at(off)
	}
	return e
}

// lineIndex maps byte offsets to 1-based line numbers.
type lineIndex []int // offsets of '\n'

func newLineIndex(data []byte) lineIndex {
	l := make(lineIndex, 0, bytes.Count(data, []byte{'\n'}))
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return l
		}
		l = append(l, i+j)
		i += j + 1
	}
}

// at returns the line of the byte at offset off.
func (l lineIndex) at(off int) int {
	return sort.SearchInts(l, off) + 1
}
