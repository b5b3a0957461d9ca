//go:build linux

package main

import "testing"

func TestParseSystemdVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`"252.39-1~deb12u2"`, 252},
		{`"257.13-1~deb13u1"`, 257},
		{`"254"`, 254},
		{`""`, 0},
		{`"v255"`, 0},
	} {
		if got := parseSystemdVersion(tc.in); got != tc.want {
			t.Errorf("parseSystemdVersion(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
