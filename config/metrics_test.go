package config

import (
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		network string
		address string
		path    string
		err     string // a part of the error; "" = valid
	}{
		{name: "off by default", toml: ""},
		{name: "loopback", toml: `address = "127.0.0.1:9101"`, network: "tcp", address: "127.0.0.1:9101"},
		{name: "ipv6", toml: `address = "[::1]:9101"`, network: "tcp", address: "[::1]:9101"},
		{name: "every ipv4 address, said so", toml: `address = "0.0.0.0:9101"`, network: "tcp", address: "0.0.0.0:9101"},
		{name: "unix prefix", toml: `address = "unix:/run/m.sock"`, network: "unix", address: "/run/m.sock"},
		{name: "relative unix path", toml: `address = "unix:m.sock"`, network: "unix", address: "/etc/baton/m.sock"},
		{name: "bare path", toml: `address = "/run/m.sock"`, network: "unix", address: "/run/m.sock"},
		{name: "abstract", toml: `address = "unix:@m"`, network: "unix", address: "@m"},
		{name: "path", toml: "address = \"127.0.0.1:1\"\npath = \"/x/metrics\"", network: "tcp", address: "127.0.0.1:1", path: "/x/metrics"},

		{name: "host name", toml: `address = "localhost:9101"`, err: "metrics.address: host must be an IP address"},
		{name: "empty host", toml: `address = ":9101"`, err: "metrics.address: host must be an IP address"},
		{name: "no port", toml: `address = "127.0.0.1"`, err: "metrics.address: must be ip:port"},
		{name: "port out of range", toml: `address = "127.0.0.1:65536"`, err: "port must be a number"},
		{name: "zone", toml: `address = "[fe80::1%eth0]:9101"`, err: "zone"},
		{name: "newline", toml: `address = "127.0.0.1:9101\n"`, err: "metrics.address"},
		{name: "unix too long", toml: `address = "unix:/` + strings.Repeat("a", 120) + `"`, err: "at most 107"},
		{name: "unix nul", toml: `address = "unix:/a\u0000b"`, err: "NUL"},
		{name: "path relative", toml: `path = "metrics"`, err: "metrics.path: must be a URL path starting with /"},
		{name: "path with query", toml: `path = "/m?x=1"`, err: "metrics.path: must be printable ASCII"},
		{name: "path with newline", toml: `path = "/m\nX-Evil: 1"`, err: "metrics.path"},
		{name: "path too long", toml: `path = "/` + strings.Repeat("a", 300) + `"`, err: "at most 255"},
		{name: "unknown key", toml: `adress = "127.0.0.1:1"`, err: `unknown key (did you mean "address"?)`},
		{name: "not a string", toml: `address = 9101`, err: "metrics.address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "[worker]\ncommand = [\"x\"]\n[metrics]\n" + tt.toml + "\n"
			c, err := Parse(testPath, []byte(data))
			if err == nil {
				err = c.Validate()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), testPath+":4:") {
					t.Errorf("err = %v, want it to name line 4 of the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := c.Metrics
			if m.Network != tt.network || m.Address != tt.address || m.Path != tt.path {
				t.Errorf("metrics = %+v, want network %q address %q path %q", m, tt.network, tt.address, tt.path)
			}
			if want := tt.address != ""; m.On() != want {
				t.Errorf("On() = %v, want %v", m.On(), want)
			}
			if tt.path == "" && m.URLPath() != DefaultMetricsPath {
				t.Errorf("URLPath() = %q, want the default", m.URLPath())
			}
		})
	}
}

func TestMetricsKeyOutsideTable(t *testing.T) {
	_, err := Parse(testPath, []byte("path = \"/m\"\n"))
	if err == nil || !strings.Contains(err.Error(), "it belongs under [metrics]") {
		t.Fatalf("err = %v, want a hint at [metrics]", err)
	}
}
