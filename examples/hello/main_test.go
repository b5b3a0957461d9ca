//go:build linux

package main

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr error // nil: any error is a failure; errAny: some error
	}{
		{"defaults", nil, config{names: []string{"http"}, drain: time.Second, shutdownTimeout: 10 * time.Second}, nil},
		{"all flags", []string{"-names", "a,b", "-listen", ":8080", "-drain", "0", "-close-spread", "4s", "-shutdown-timeout", "3s"},
			config{names: []string{"a", "b"}, listen: ":8080", closeSpread: 4 * time.Second, shutdownTimeout: 3 * time.Second}, nil},
		{"help", []string{"-h"}, config{}, flag.ErrHelp},
		{"unknown flag", []string{"-nope"}, config{}, errAny},
		{"no names", []string{"-names", " , "}, config{}, errNoNames},
		{"negative drain", []string{"-drain", "-1s"}, config{}, errAny},
		{"negative close-spread", []string{"-close-spread", "-1s"}, config{}, errAny},
		{"zero shutdown timeout", []string{"-shutdown-timeout", "0"}, config{}, errAny},
		{"stray argument", []string{"serve"}, config{}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			got, err := parseFlags(tt.args, &stderr)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("got error %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(stderr.String(), "usage: hello") {
					t.Errorf("stderr: got %q, want the usage", stderr.String())
				}
				return
			}
			if !slices.Equal(got.names, tt.want.names) || got.listen != tt.want.listen ||
				got.drain != tt.want.drain || got.shutdownTimeout != tt.want.shutdownTimeout || got.closeSpread != tt.want.closeSpread {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// errAny in a wantErr column means: some error, whichever.
var errAny = errors.New("any error")

// TestHelp runs the real program with -h.
func TestHelp(t *testing.T) {
	p := start(t, spec{args: []string{"-h"}, notifyAddr: "-"})
	if got := p.wait(t); got != exitOK {
		t.Errorf("exit status: got %d, want %d", got, exitOK)
	}
	for _, want := range []string{"usage: hello", "-names", "-listen", "-drain", "-shutdown-timeout"} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("-h output lacks %q", want)
		}
	}
}

// TestUsageError runs the real program with a bad flag.
func TestUsageError(t *testing.T) {
	p := start(t, spec{args: []string{"-names", ""}})
	if got := p.wait(t); got != exitUsage {
		t.Errorf("exit status: got %d, want %d", got, exitUsage)
	}
	p.expectNoNotify(t)
}

func FuzzParseNames(f *testing.F) {
	f.Add("http")           // the default
	f.Add("admin, http")    // spaces around names
	f.Add("*")              // all listeners
	f.Add("http,,http,")    // empty and repeated entries
	f.Add(" , ")            // nothing but separators: an error
	f.Add("a\tb,c\u00a0")   // tabs and Unicode spaces
	f.Add("hello.socket:x") // ':' is LISTEN_FDNAMES' separator, kept as is
	f.Fuzz(func(t *testing.T, list string) {
		names, err := parseNames(list)
		if err != nil {
			if !errors.Is(err, errNoNames) {
				t.Fatalf("parseNames(%q): error %v does not wrap errNoNames", list, err)
			}
			return
		}
		if len(names) == 0 {
			t.Fatalf("parseNames(%q): no names and no error", list)
		}
		for i, name := range names {
			if name == "" || name != strings.TrimSpace(name) || strings.Contains(name, ",") {
				t.Errorf("parseNames(%q): bad name %q", list, name)
			}
			if slices.Contains(names[:i], name) {
				t.Errorf("parseNames(%q): %q repeated", list, name)
			}
		}
		// Round trip: printing the names and parsing them again is stable.
		again, err := parseNames(strings.Join(names, ","))
		if err != nil || !slices.Equal(again, names) {
			t.Errorf("parseNames(%q) = %q; again: %q, %v", list, names, again, err)
		}
	})
}
