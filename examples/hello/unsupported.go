//go:build !linux

package main

import (
	"fmt"
	"os"
)

// main fails at once: hello takes its listeners and dispositions the Linux
// way, and baton runs on Linux only.
func main() {
	fmt.Fprintln(os.Stderr, "hello: Linux only")
	os.Exit(1)
}
