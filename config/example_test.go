package config_test

import (
	"fmt"

	"github.com/baton-supervisor/baton/config"
)

func ExampleParse() {
	file := `[[listen]]
name = "http"
address = "127.0.0.1:8080"

[worker]
command = ["/usr/bin/app"]
count = 0
stop_sigal = "QUIT"
`
	_, err := config.Parse("/etc/baton/web.toml", []byte(file))
	for _, e := range config.Errors(err) {
		fmt.Println(e)
	}
	// Output:
	// /etc/baton/web.toml:7: worker.count: must be from 1 to 1024 (got 0)
	// /etc/baton/web.toml:8: worker.stop_sigal: unknown key (did you mean "stop_signal"?)
}

func ExampleOverrides_Apply() {
	c, err := config.Parse("/etc/baton/web.toml", []byte(config.Example()))
	if err != nil {
		panic(err)
	}
	o := config.Overrides{Listen: []string{"http=unix:/run/web.sock"}, Workers: 4}
	if err := o.Apply(c); err != nil {
		panic(err)
	}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	l := c.Listeners[0]
	fmt.Println(l.Name, l.Network, l.Address, c.Worker.Count)
	// Output:
	// http unix /run/web.sock 4
}

func ExampleParseListen() {
	l, err := config.ParseListen("api=tcp6:[::1]:8080")
	fmt.Println(l.Name, l.Network, l.Address, err)
	_, err = config.ParseListen("api=8080")
	fmt.Println(err)
	// Output:
	// api tcp6 [::1]:8080 <nil>
	// config: listen "api=8080": address must be host:port, such as 127.0.0.1:8080 or [::1]:8080 (missing port in address in "8080")
}
