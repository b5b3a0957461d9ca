package sdnotify_test

import (
	"fmt"
	"time"

	"github.com/baton-supervisor/baton/sdnotify"
)

// Off systemd, New returns a nil *Notifier and an error wrapping
// os.ErrNotExist; the nil Notifier accepts every call and does nothing.
func ExampleNotifier_nil() {
	var n *sdnotify.Notifier
	fmt.Println(n.Notify(sdnotify.Ready, sdnotify.Status("serving")))
	fmt.Println(n.Barrier(time.Second))
	fmt.Printf("%q\n", n.Addr())
	// Output:
	// <nil>
	// <nil>
	// ""
}

func ExampleParseState() {
	fields, err := sdnotify.ParseState([]byte("READY=1\nSTATUS=2 workers, a=b\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range fields {
		fmt.Printf("%s: %q\n", f.Key, f.Value)
	}
	_, err = sdnotify.ParseState([]byte("hello"))
	fmt.Println(err)
	// Output:
	// READY: "1"
	// STATUS: "2 workers, a=b"
	// sdnotify: malformed notify message: line 1 "hello": no '='
}

func ExampleStatus() {
	fmt.Println(sdnotify.Status("upgrade failed:\nexit status 1"))
	// Output: STATUS=upgrade failed: exit status 1
}
