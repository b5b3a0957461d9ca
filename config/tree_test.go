package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// goTOMLError is what go-toml says about data, as an *Error: nil for a
// valid document. Parse once asked go-toml first; buildTree must still
// accept the same documents and reject the others with the same words.
func goTOMLError(path string, data []byte) *Error {
	var generic map[string]any
	err := toml.Unmarshal(data, &generic)
	if err == nil {
		return nil
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	line, _ := de.Position()
	return &Error{File: path, Line: line, Key: keyString(de.Key()), Msg: strings.TrimPrefix(de.Error(), "toml: ")}
}

// checkTreeMatchesGoTOML fails unless buildTree and go-toml agree on data.
func checkTreeMatchesGoTOML(t *testing.T, path string, data []byte) {
	t.Helper()
	want := goTOMLError(path, data)
	_, got := buildTree(path, data)
	switch {
	case want == nil && got == nil:
	case want == nil:
		t.Fatalf("buildTree: %v; go-toml accepts\n%q", got, data)
	case got == nil:
		t.Fatalf("buildTree accepts; go-toml: %v\n%q", want, data)
	case got.Error() != want.Error():
		t.Fatalf("buildTree and go-toml differ on\n%q\n got %s\nwant %s", data, got, want)
	}
}

func TestTreeMatchesGoTOML(t *testing.T) {
	tests := []struct{ name, toml string }{
		// Keys defined twice.
		{"key twice", "a = 1\na = 2\n"},
		{"key twice in a table", "[worker]\n\ncount = 1\ncount = 2\n"},
		{"quoted spelling of the same key", "a = 1\n'a' = 2\n"},
		{"dotted key over a value", "a = 1\na.b = 2\n"},
		{"value over a dotted table", "a.b = 1\na = 2\n"},
		{"dotted key into an inline table", "a = {b = 1}\na.c = 2\n"},
		{"dotted key into a header table", "[a.b.c]\n[a]\nb.d = 1\n"},
		{"dotted keys extend their table", "a.b = 1\na.c = 2\n[x]\ny.z = 1\ny.w.v = 2\n"},
		{"key twice in an inline table", "[worker]\nenv = { A = \"1\", B = \"2\", A = \"3\" }\n"},
		{"dotted keys in an inline table", "t = { a.b = 1, a.c = 2 }\n"},
		{"dotted key over a value in an inline table", "t = { a = 1, a.b = 2 }\n"},
		{"inline table in an array", "a = [{b = 1}, {b = 1, b = 2}]\n"},
		{"inline table nested", "a = {b = {c = 1, c = 2}}\n"},
		{"duplicate before a bad date", "a = [{b = 1979-02-30}, {c = 1, c = 2}]\n"},

		// Tables defined twice.
		{"table twice", "[worker]\n[upgrade]\n[worker]\n"},
		{"table after a longer header", "[a.b]\n[a]\n[a.c]\n"},
		{"table after a longer header, twice", "[a.b]\n[a]\n[a]\n"},
		{"table over a dotted table", "a.b = 1\n[a]\n"},
		{"subtable of a dotted table", "a.b = 1\n[a.c]\nd = 1\n"},
		{"table over a value", "a = 1\n[a]\n"},
		{"table over an inline table", "a = {}\n[a]\n"},
		{"table through a value", "a = 1\n[a.b]\n"},
		{"table through an inline table", "a = {b = {}}\n[a.b.c]\n"},
		{"table through an array", "a = [{}]\n[a.b]\n"},
		{"table over an array of tables", "[[a]]\n[a]\n"},
		{"array of tables over a table", "[a]\n[[a]]\n"},
		{"array of tables over a dotted table", "a.b = 1\n[[a]]\n"},
		{"array of tables over a value", "listen = []\n[[listen]]\n"},
		{"array of tables over an implied table", "[a.b]\n[[a]]\n"},
		{"subtable per table of an array", "[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2\n"},
		{"subtable twice in one table of an array", "[[a]]\n[a.b]\n[a.b]\n"},
		{"nested arrays of tables", "[[a]]\n[[a.b]]\n[[a.b]]\n[[a]]\n[[a.b]]\n[a.b.c]\n"},
		{"table into an array of tables", "[[listen]]\n[listen.x]\ny = 1\n[worker]\n[worker]\n"},
		{"key twice in a table of an array", "[[listen]]\nname = \"a\"\n[[listen]]\nname = \"b\"\nname = \"c\"\n"},
		{"dotted key through an array of tables", "[[x.a]]\n[x]\na.b = 1\n"},

		// Values the parser scans but go-toml decodes.
		{"decimal too large", "a = 9_223_372_036_854_775_808\n"},
		{"decimal largest", "a = 9_223_372_036_854_775_807\nb = -9223372036854775808\n"},
		{"hexadecimal too large", "a = 0xffff_ffff_ffff_ffff\n"},
		{"octal and binary", "a = 0o777\nb = 0b1010\nc = 0x7fffffffffffffff\n"},
		{"integer too large in an array", "a = [\n  1,\n  99999999999999999999,\n]\n"},
		{"no such day", "a = 1979-02-30\n"},
		{"no such hour", "a = 25:00:00\n"},
		{"no such local date-time", "a = 1979-05-27T07:32:61\n"},
		{"offset date-time", "a = 1979-05-27T07:32:00-08:00\nb = 1979-05-27 07:32:00Z\n"},
		{"floats", "a = 1e400\nb = -0.0\nc = nan\nd = +inf\ne = 6.626e-34\n"},
		{"bad value in an inline table", "[worker]\nenv = { A = \"1\", B = 2000-13-01 }\n"},

		// Syntax.
		{"missing value", "[worker]\ncount =\n"},
		{"unclosed table", "\n\n[worker\n"},
		{"bad string", "pidfile = \"abc\n"},
		{"end of input in an array", "a = [1,\n2,"},
		{"leading zero", "a = 012\n"},
		{"carriage return", "a = 1\rb = 2\n"},
		{"nested too deep", "a = " + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "\n"},

		// Valid documents.
		{"empty", ""},
		{"reference file", Example()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTreeMatchesGoTOML(t, "/etc/baton/web.toml", []byte(tt.toml))
		})
	}
}
