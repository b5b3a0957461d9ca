module github.com/baton-supervisor/baton

go 1.26.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/pelletier/go-toml/v2 v2.4.3
	golang.org/x/sys v0.49.0
)

require github.com/godbus/dbus/v5 v5.2.4 // indirect
