//go:build linux

package fdstore_test

import (
	"context"
	"fmt"
	"time"

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

// The master looks the config's names up off its loop, with a deadline;
// Resolve then looks nothing up.
func ExampleLookupSpecs() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	specs := []fdstore.Spec{
		{Name: "web", Network: "tcp", Address: "localhost:8080"},
		{Name: "www", Network: "tcp", Address: ":http"},
		{Name: "admin", Network: "unix", Address: "/run/web/admin.sock"},
	}
	specs, err := fdstore.LookupSpecs(ctx, specs)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range specs {
		fmt.Println(s.Name, s.Address)
	}
	// Output:
	// web 127.0.0.1:8080
	// www :80
	// admin /run/web/admin.sock
}
