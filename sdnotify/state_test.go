package sdnotify

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseState(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Field
	}{
		{"empty", "", nil},
		{"only newlines", "\n\n", nil},
		{"ready", "READY=1", []Field{{"READY", "1"}}},
		{"trailing newline", "READY=1\n", []Field{{"READY", "1"}}},
		{"several", "READY=1\nSTATUS=up, 2 workers\nMAINPID=42",
			[]Field{{"READY", "1"}, {"STATUS", "up, 2 workers"}, {"MAINPID", "42"}}},
		{"empty lines skipped", "\nREADY=1\n\n\nSTOPPING=1\n", []Field{{"READY", "1"}, {"STOPPING", "1"}}},
		{"value with '='", "STATUS=a=b=c", []Field{{"STATUS", "a=b=c"}}},
		{"empty value", "STATUS=", []Field{{"STATUS", ""}}},
		{"digits and underscore", "X_1=2", []Field{{"X_1", "2"}}},
		{"CR kept in value", "STATUS=a\r", []Field{{"STATUS", "a\r"}}},
		{"repeated key kept", "STATUS=a\nSTATUS=b", []Field{{"STATUS", "a"}, {"STATUS", "b"}}},
		{"utf-8 value", "STATUS=café ☕", []Field{{"STATUS", "café ☕"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseState([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseState(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseState(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStateMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"no '='", "READY"},
		{"second line no '='", "READY=1\nhello"},
		{"empty key", "=1"},
		{"lower-case key", "ready=1"},
		{"space in key", "MY KEY=1"},
		{"space before key", " READY=1"},
		{"dash in key", "FD-NAME=x"},
		{"NUL in value", "STATUS=a\x00b"},
		{"NUL in key", "REA\x00DY=1"},
		{"CRLF line ending leaves CR in key", "READY\r=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseState([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseState(%q) error = %v, want ErrMalformed", tt.in, err)
			}
			if got != nil {
				t.Errorf("ParseState(%q) = %q with an error, want nil", tt.in, got)
			}
		})
	}
}

func TestFormatState(t *testing.T) {
	tests := []struct {
		name   string
		fields []Field
		want   string
	}{
		{"none", nil, ""},
		{"one", []Field{{"READY", "1"}}, "READY=1"},
		{"two", []Field{{"READY", "1"}, {"STATUS", "a=b"}}, "READY=1\nSTATUS=a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(FormatState(tt.fields)); got != tt.want {
				t.Errorf("FormatState(%q) = %q, want %q", tt.fields, got, tt.want)
			}
		})
	}
}

func TestMessageGet(t *testing.T) {
	m := Message{Fields: []Field{{"STATUS", "first"}, {"READY", "1"}, {"STATUS", "last"}, {"EMPTY", ""}}}
	tests := []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"STATUS", "last", true},
		{"READY", "1", true},
		{"EMPTY", "", true},
		{"MAINPID", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := m.Get(tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte("READY=1"))                                   // the common case
	f.Add([]byte("READY=1\nSTATUS=serving, 4 workers\n"))      // several lines, trailing newline
	f.Add([]byte("\n\nSTOPPING=1\n\n"))                        // empty lines around a field
	f.Add([]byte("STATUS=a=b=c"))                              // '=' inside the value
	f.Add([]byte("STATUS="))                                   // empty value
	f.Add([]byte("FDSTORE=1\nFDNAME=web:http"))                // FD store message
	f.Add([]byte("BARRIER=1"))                                 // barrier
	f.Add([]byte("MAINPID=123\nMONOTONIC_USEC=99"))            // numbers
	f.Add([]byte("READY"))                                     // malformed: no '='
	f.Add([]byte("=1"))                                        // malformed: empty key
	f.Add([]byte("ready=1"))                                   // malformed: lower-case key
	f.Add([]byte("STATUS=a\x00b"))                             // malformed: NUL in value
	f.Add([]byte("STATUS=a\r\nREADY=1\r\n"))                   // CRLF: CR stays in values
	f.Add([]byte("STATUS=\xff\xfe"))                           // invalid UTF-8 value is kept
	f.Add([]byte(strings.Repeat("X=", 100) + "\n" + "Y=\n\n")) // many '='
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := ParseState(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseState(%q) error %v does not wrap ErrMalformed", b, err)
			}
			return
		}
		for _, f := range fields {
			if !validKey([]byte(f.Key)) || strings.ContainsAny(f.Value, "\n\x00") {
				t.Fatalf("ParseState(%q) accepted field %q", b, f)
			}
		}
		out := FormatState(fields)
		again, err := ParseState(out)
		if err != nil {
			t.Fatalf("ParseState(FormatState(%q)) = %v", fields, err)
		}
		if !reflect.DeepEqual(again, fields) {
			t.Fatalf("round trip of %q: got %q, want %q", b, again, fields)
		}
	})
}
