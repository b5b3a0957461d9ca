package sdnotify

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMessageHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"status", Status("serving"), "STATUS=serving"},
		{"status newlines flattened", Status("a\nb\r\nc\rd"), "STATUS=a b  c d"},
		{"status NUL flattened", Status("a\x00b"), "STATUS=a b"},
		{"status cannot inject a field", Status("x\nREADY=1"), "STATUS=x READY=1"},
		{"mainpid", MainPID(1234), "MAINPID=1234"},
		{"monotonic", MonotonicUsec(1500 * time.Millisecond), "MONOTONIC_USEC=1500000"},
		{"extend timeout", ExtendTimeoutUsec(90 * time.Second), "EXTEND_TIMEOUT_USEC=90000000"},
		{"extend timeout negative", ExtendTimeoutUsec(-time.Second), "EXTEND_TIMEOUT_USEC=0"},
		{"watchdog usec", WatchdogUsec(30 * time.Second), "WATCHDOG_USEC=30000000"},
		{"watchdog usec rounds down", WatchdogUsec(1999 * time.Nanosecond), "WATCHDOG_USEC=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestMonotonicNow(t *testing.T) {
	got := MonotonicNow()
	v, ok := strings.CutPrefix(got, "MONOTONIC_USEC=")
	if !ok {
		t.Fatalf("MonotonicNow() = %q, want MONOTONIC_USEC=…", got)
	}
	if us, err := strconv.ParseUint(v, 10, 64); err != nil || us == 0 {
		t.Errorf("MonotonicNow() = %q, want a positive number of µs", got)
	}
}

func TestFDName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"plain", "http", "FDNAME=http", false},
		{"punctuation", "web-1.tcp_8080/x", "FDNAME=web-1.tcp_8080/x", false},
		{"longest", strings.Repeat("a", 255), "FDNAME=" + strings.Repeat("a", 255), false},
		{"too long", strings.Repeat("a", 256), "", true},
		{"empty", "", "", true},
		{"colon", "web:http", "", true},
		{"newline", "web\nFDSTOREREMOVE=1", "", true},
		{"space", "a b", "FDNAME=a b", false},
		{"tab", "a\tb", "", true},
		{"DEL", "a\x7f", "", true},
		{"non-ASCII", "café", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FDName(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidFDName) {
					t.Fatalf("FDName(%q) = %q, %v; want ErrInvalidFDName", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("FDName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name    string
		usec    string // "-" leaves WATCHDOG_USEC unset
		pid     string // "-" leaves WATCHDOG_PID unset
		want    time.Duration
		wantErr bool
	}{
		{"unset", "-", "-", 0, false},
		{"no pid", "30000000", "-", 30 * time.Second, false},
		{"our pid", "500000", self, 500 * time.Millisecond, false},
		{"another pid", "500000", "1", 0, false},
		{"pid without usec", "-", self, 0, false},
		{"zero", "0", "-", 0, true},
		{"negative", "-5", "-", 0, true},
		{"not a number", "soon", "-", 0, true},
		{"overflows Duration", "18446744073709551615", "-", 0, true},
		{"bad pid", "500000", "me", 0, true},
		{"zero pid", "500000", "0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setOrUnset(t, "WATCHDOG_USEC", tt.usec)
			setOrUnset(t, "WATCHDOG_PID", tt.pid)
			got, err := WatchdogInterval()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("WatchdogInterval() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestParseUsec: what a worker sends is read strictly, whatever strconv would take.
func TestParseUsec(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"1", time.Microsecond, true},
		{"10000000", 10 * time.Second, true},
		{"0010", 10 * time.Microsecond, true},
		{"9223372036854775", 9223372036854775 * time.Microsecond, true}, // the most a Duration holds
		{"9223372036854776", 0, false},
		{"18446744073709551615", 0, false},
		{"184467440737095516150", 0, false}, // 21 digits
		{"", 0, false},
		{"+5", 0, false},
		{"-5", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5s", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"٣", 0, false}, // a digit, not an ASCII one
	}
	for _, tt := range tests {
		got, err := ParseUsec(tt.in)
		if (err == nil) != tt.ok || got != tt.want || err != nil && !errors.Is(err, ErrInvalidUsec) {
			t.Errorf("ParseUsec(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// setOrUnset sets key to value for the test, or unsets it if value is "-".
func setOrUnset(t *testing.T, key, value string) {
	t.Helper()
	t.Setenv(key, value) // restores the old value after the test
	if value == "-" {
		os.Unsetenv(key)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{"path", "/run/systemd/notify", false},
		{"abstract", "@baton/1/x", false},
		{"longest path", "/" + strings.Repeat("a", 106), false},
		{"path too long", "/" + strings.Repeat("a", 107), true},
		{"abstract too long", "@" + strings.Repeat("a", 107), true},
		{"empty", "", true},
		{"relative", "run/notify", true},
		{"bare @", "@", true},
		{"vsock", "vsock:2:1234", true},
		{"NUL", "/run/a\x00b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAddr(tt.addr)
			if tt.wantErr != errors.Is(err, ErrBadAddr) || !tt.wantErr && err != nil {
				t.Errorf("checkAddr(%q) = %v, want error %v", tt.addr, err, tt.wantErr)
			}
		})
	}
}
