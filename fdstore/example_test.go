//go:build linux

package fdstore_test

import (
	"fmt"

	"github.com/baton-supervisor/baton/fdstore"
)

func ExampleNames() {
	ls := []*fdstore.Listener{{Name: "web"}, {Name: "web"}, {Name: "admin"}}
	fmt.Println("LISTEN_FDNAMES=" + fdstore.Names(ls))
	// Output: LISTEN_FDNAMES=web:web:admin
}

// A reload: the config now asks for "web" only. The listener the master
// had for it is kept, the one for "metrics" is no longer wanted.
func ExampleResolve() {
	web, _ := fdstore.Open(fdstore.Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:0"})
	metrics, _ := fdstore.Open(fdstore.Spec{Name: "metrics", Network: "tcp", Address: "127.0.0.1:0"})
	have := []*fdstore.Listener{web, metrics}

	specs := []fdstore.Spec{{Name: "web", Network: "tcp", Address: "127.0.0.1:0"}}
	use, unused, err := fdstore.Resolve(specs, have)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range unused {
		l.Close() // and FDSTOREREMOVE=1 FDNAME=metrics
	}
	defer web.Close()
	fmt.Println("use:", fdstore.Names(use), use[0] == web)
	fmt.Println("unused:", fdstore.Names(unused))
	// Output:
	// use: web true
	// unused: metrics
}
