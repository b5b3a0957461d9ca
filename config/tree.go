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

// node is a TOML value that remembers the line it was given on. go-toml
// decodes values but forgets where they were; its unstable parser knows
// where but leaves tables unassembled. buildTree puts the two together.
type node struct {
	line int           // line of the key that names it (of an array element: its own)
	kind unstable.Kind // String, Integer, Float, Bool, a date kind, Array, ArrayTable or Table
	text string        // String: the decoded string; other scalars: the raw text

	items []*node // Array, ArrayTable ([[x]] tables; each a Table)

	keys   []string         // Table: keys in document order
	fields map[string]*node // Table
}

func newTable(line int) *node {
	return &node{line: line, kind: unstable.Table, fields: map[string]*node{}}
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

// syntaxError turns a go-toml error into an *Error at its line.
func syntaxError(path string, err error) *Error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return &Error{File: path, Line: line, Key: keyString(de.Key()), Msg: strings.TrimPrefix(de.Error(), "toml: "), err: err}
	}
	return &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: "), err: err}
}

// buildTree parses data into a tree of nodes. It first lets go-toml decode
// the whole document, which rejects everything TOML forbids (syntax,
// duplicate keys, redefined tables) with a line number; the walk over the
// parser's expressions that follows may then assume a valid document.
func buildTree(path string, data []byte) (*node, *Error) {
	var generic map[string]any
	if err := toml.Unmarshal(data, &generic); err != nil {
		return nil, syntaxError(path, err)
	}
	lines := newLineIndex(data)
	var p unstable.Parser
	p.Reset(data)
	root := newTable(0)
	cur := root
	for p.NextExpression() {
		e := p.Expression()
		var err error
		var parts []string
		var line int
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, line = keyParts(e.Key(), lines)
			cur, err = root.header(parts, line, e.Kind == unstable.ArrayTable)
		case unstable.KeyValue:
			parts, line = keyParts(e.Key(), lines)
			err = cur.set(parts, value(e.Value(), line, lines), line)
		}
		if err != nil { // not reached: go-toml has rejected such documents
			return nil, &Error{File: path, Line: line, Key: keyString(parts), Msg: err.Error()}
		}
	}
	if err := p.Error(); err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return root, nil
}

// keyParts returns the parts of a dotted key and the line it starts on.
func keyParts(it unstable.Iterator, lines lineIndex) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = lines.at(k.Raw)
		}
		parts = append(parts, string(k.Data))
	}
	return parts, line
}

// value converts a value expression. line is used for values that carry no
// position of their own (arrays).
func value(v *unstable.Node, line int, lines lineIndex) *node {
	switch v.Kind {
	case unstable.Array:
		n := &node{line: line, kind: unstable.Array}
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			cline := line
			if c.Raw.Length > 0 {
				cline = lines.at(c.Raw)
			}
			n.items = append(n.items, value(c, cline, lines))
		}
		return n
	case unstable.InlineTable:
		n := newTable(line)
		it := v.Children()
		for it.Next() {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			parts, kline := keyParts(kv.Key(), lines)
			// go-toml has already rejected duplicate keys in inline tables.
			_ = n.set(parts, value(kv.Value(), kline, lines), kline)
		}
		return n
	default:
		return &node{line: line, kind: v.Kind, text: string(v.Data)}
	}
}

// header finds or creates the table named by a [a.b] or [[a.b]] header and
// returns it.
func (t *node) header(parts []string, line int, array bool) (*node, error) {
	parent, err := t.descend(parts[:len(parts)-1], line)
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	n, ok := parent.fields[last]
	if !array {
		switch {
		case !ok:
			n = newTable(line)
			parent.add(last, n)
		case n.kind != unstable.Table:
			return nil, fmt.Errorf("%s is not a table", last)
		}
		return n, nil
	}
	switch {
	case !ok:
		n = &node{line: line, kind: unstable.ArrayTable}
		parent.add(last, n)
	case n.kind != unstable.ArrayTable:
		return nil, fmt.Errorf("%s is not an array of tables", last)
	}
	elem := newTable(line)
	n.items = append(n.items, elem)
	return elem, nil
}

// set stores v under a possibly dotted key relative to t.
func (t *node) set(parts []string, v *node, line int) error {
	parent, err := t.descend(parts[:len(parts)-1], line)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	if _, ok := parent.fields[last]; ok {
		return fmt.Errorf("%s is defined twice", last)
	}
	parent.add(last, v)
	return nil
}

// descend walks down the tables named by parts, creating the missing ones;
// through an array of tables it goes to the last element, as TOML says.
func (t *node) descend(parts []string, line int) (*node, error) {
	cur := t
	for _, p := range parts {
		n, ok := cur.fields[p]
		switch {
		case !ok:
			n = newTable(line)
			cur.add(p, n)
		case n.kind == unstable.ArrayTable && len(n.items) > 0:
			n = n.items[len(n.items)-1]
		case n.kind != unstable.Table:
			return nil, fmt.Errorf("%s is not a table", p)
		}
		cur = n
	}
	return cur, nil
}

func (t *node) add(key string, v *node) {
	t.keys = append(t.keys, key)
	t.fields[key] = v
}

// lineIndex maps byte offsets to 1-based line numbers.
type lineIndex []int // offsets of '\n'

func newLineIndex(data []byte) lineIndex {
	var l lineIndex
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return l
		}
		l = append(l, i+j)
		i += j + 1
	}
}

func (l lineIndex) at(r unstable.Range) int {
	off := int(r.Offset)
	return sort.SearchInts(l, off) + 1
}
