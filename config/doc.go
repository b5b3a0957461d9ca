// Package config reads baton's TOML configuration file, fills in defaults,
// lays command-line flags over it and checks the result, the way `nginx -t`
// does.
//
// Invariants:
//
//   - Every problem is an *Error that says where it is: the file, the line
//     and the key for a value from the file ("/etc/baton/web.toml:12:
//     worker.count: must be from 1 to 1024 (got 0)"), the flag for a value
//     from Overrides ("--listen \"http=bad\": …"). Validate keeps the
//     positions Parse found, so it still names the line after Apply.
//   - Unknown keys and values of the wrong type are errors, never ignored.
//   - Parse and Validate report every problem they find, sorted by line,
//     not only the first; Errors lists them.
//   - A Config that Parse returned, and that Validate accepts, survives
//     Encode and Parse unchanged (except Path).
//   - Paths in a Config are absolute (or "@name", an abstract socket):
//     relative ones in the file are relative to the file's directory,
//     relative flags to the current one.
//   - Nothing here touches the system beyond reading the file (and
//     ControlPath reading $RUNTIME_DIRECTORY): users, groups, programs and
//     socket paths are checked when they are used.
//     The package logs nothing.
//   - Load refuses a file over MaxFileSize, 1 MiB ("FILE: too large (N
//     bytes, limit 1048576)"), and reads no more of it than that. Parse
//     takes time and memory in proportion to its input, however the TOML
//     is shaped.
//
// The reference for every key is default.toml (see Example). The file format
// is TOML: https://toml.io/en/v1.0.0. Socket names reach workers as
// LISTEN_FDNAMES: https://www.freedesktop.org/software/systemd/man/latest/sd_listen_fds.html
package config
