package config

import _ "embed"

//go:embed default.toml
var exampleTOML string

// Example returns the reference configuration file, default.toml: every key
// with a comment, the defaults, one listener "http" on 127.0.0.1:8080 and
// the reference worker `hello`. It parses and validates.
func Example() string {
	return exampleTOML
}
