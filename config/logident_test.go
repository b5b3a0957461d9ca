package config

import (
	"strings"
	"testing"
)

func TestJournalIdentifier(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	tests := []struct {
		name    string
		command []string
		key     string
		want    string
	}{
		{"the program's base name", []string{"/usr/bin/gunicorn", "app:app"}, "", "gunicorn"},
		{"a bare name", []string{"python3", "-m", "http.server"}, "", "python3"},
		{"the key wins", []string{"/usr/bin/python3"}, "web", "web"},
		{"spaces and controls become _", []string{"/opt/my app/run\tit\n"}, "", "run_it_"},
		{"invalid UTF-8 becomes _", []string{"/bin/a\xffb"}, "", "a_b"},
		{"cut to MaxLogIdent bytes, whole characters", []string{"/bin/" + long}, "", strings.Repeat("é", 32)},
		{"a directory", []string{"/srv/"}, "", "srv"},
		{"no command", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Worker{Command: tt.command, LogIdentifier: tt.key}
			got := w.JournalIdentifier()
			if got != tt.want {
				t.Errorf("JournalIdentifier() = %q, want %q", got, tt.want)
			}
			if got != "" {
				if err := checkLogIdentifier(got); err != nil {
					t.Errorf("JournalIdentifier() = %q, which the key would refuse: %v", got, err)
				}
			}
		})
	}
}
