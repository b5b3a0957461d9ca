//go:build linux

package supervisor

import (
	"testing"
	"time"

	"github.com/baton-supervisor/baton/config"
)

func TestBackoff(t *testing.T) {
	cfg := config.Worker{RestartDelay: 100 * time.Millisecond, RestartDelayMax: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := backoff(cfg, i+1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	cfg.RestartDelay = 0
	if got := backoff(cfg, 5); got != 0 {
		t.Errorf("zero delay doubled to %v", got)
	}
}

func TestWorkerEnv(t *testing.T) {
	base := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "LISTEN_FDS=9", "WATCHDOG_USEC=1", "HOME=/root", "BATON_STOP_TIMEOUT=7"}
	cfg := config.Worker{Env: []string{"A=b"}, StopTimeout: 30 * time.Second}
	got := workerEnv(base, cfg, nil, "@baton/1/x", 3, 2)
	want := []string{"PATH=/bin", "HOME=/root", "A=b", "NOTIFY_SOCKET=@baton/1/x", "BATON_GENERATION=3", "BATON_WORKER=2", "BATON_STOP_TIMEOUT=30"}
	if len(got) != len(want) {
		t.Fatalf("env = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("env[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

// BATON_STOP_TIMEOUT is seconds, a decimal number any language reads as it is.
func TestStopTimeoutEnv(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "30"}, {1500 * time.Millisecond, "1.5"}, {250 * time.Millisecond, "0.25"},
		{time.Microsecond, "0.000001"}, {90 * time.Minute, "5400"},
	} {
		if got := stopTimeoutEnv(c.d); got != c.want {
			t.Errorf("stopTimeoutEnv(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}
