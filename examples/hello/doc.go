// Hello is baton's reference worker: an HTTP server that takes its listeners
// by socket activation, reports readiness with sd_notify, and stops without
// failing a single client request. baton runs it in its demo and benchmarks;
// copy it when you adapt your own server to run under baton or systemd.
//
// Every request is answered (text/plain) with
//
//	pid=<pid> generation=<$BATON_GENERATION or 0> worker=<$BATON_WORKER>
//
// and /healthz with "ok".
//
// Usage:
//
//	hello [-names http] [-listen ADDR] [-drain 1s] [-close-spread 0]
//	      [-shutdown-timeout 10s]
//
// Flags:
//
//	-names LIST
//		Comma-separated names of the socket-activated listeners to serve
//		(LISTEN_FDNAMES; baton's [[listen]] name, systemd's
//		FileDescriptorName=). "*" serves every stream listener. Default
//		"http". A name with no listener is an error; listeners not named
//		are closed.
//	-listen ADDR
//		TCP address to listen on when no listener was passed at all, for
//		running hello bare (the benchmark baseline). Ignored when
//		listeners were passed.
//	-drain D
//		How long to keep serving connections already open after
//		accepting stops. Default 1s.
//	-close-spread D
//		After the drain window, close the idle keep-alive connections one
//		at a time, evenly over D, rather than all at once. Default 0 (all
//		at once), or from $BATON_STOP_TIMEOUT.
//	-shutdown-timeout D
//		How long, after the drain window, to wait for requests still in
//		flight and for the first request of connections that have not
//		sent one yet. Default 10s. When it runs out, hello closes what is
//		left, and exits 1 if that cut a request in flight.
//
// Environment:
//
//	BATON_STOP_TIMEOUT
//		The drain deadline baton gives each worker: its stop_timeout, in
//		seconds ("30", "1.5"), from the stop signal; SIGKILL follows. The
//		flags not given fit the drain into it: -drain 1s (or a tenth of
//		it), -shutdown-timeout 10s (or three tenths), a tenth kept back,
//		and -close-spread the rest, so that long-lived idle clients
//		reconnect to the next generation gradually and hello is done in
//		time. With 30: 1s, 17s, at most 9s. A flag given always wins; a
//		value that is not a positive number is logged and ignored.
//
// Hello ignores SIGHUP, SIGUSR1, SIGUSR2 and SIGWINCH, so that a stray
// `systemctl kill -s HUP UNIT` (which signals every process of the unit, not
// only the main one) cannot kill it. SIGTERM, SIGINT and SIGQUIT start the
// drain; further signals are ignored while it runs.
//
// # Draining
//
// Under baton the listening sockets belong to the supervisor, which keeps
// them open across generations: when a worker stops, the kernel keeps
// queueing new connections for the next one, so no connection is refused.
// Whether a request fails is decided by how the worker lets go of the
// connections it has already accepted. Three things fail requests:
//
//   - http.Server.Shutdown drops a request it reads after Shutdown began: the
//     client sees its connection closed with nothing written.
//   - Shutdown also takes a connection that has not delivered its first
//     request for idle once it is 5 seconds old (Go issue 22682), and closes
//     it. But such a connection is not idle: its client has connected and
//     its request is on its way. On a busy machine seconds can pass between
//     a client's connect and its request reaching the worker.
//   - Closing an idle keep-alive connection races the client's next request
//     on it, which may already be on the wire. SetKeepAlivesEnabled(false)
//     does exactly that to every idle connection at once.
//
// So hello does not call Shutdown. It follows every connection's state
// (http.Server.ConnState) and stops in this order:
//
//  1. Stop accepting: close its own copy of every listener and wait until no
//     Serve loop can accept again. The socket stays open in the supervisor;
//     new connections queue for (or go to) the next generation. Then send
//     STOPPING=1, if $NOTIFY_SOCKET is set.
//  2. Drain window (-drain): keep serving the connections already open, but
//     answer every response with "Connection: close". The client reads the
//     whole response, sees the header, and opens a new connection for its
//     next request, which reaches whoever still accepts on the socket. The
//     window ends early once no connection is left.
//  3. Close the idle keep-alive connections: those that have answered a
//     request and wait for the next one (StateIdle), unless the kernel
//     holds bytes of a next request hello has not read yet (SIOCINQ: net/http
//     still calls such a connection idle; closing it would cut that
//     request, so it is answered with Connection: close). With -close-spread
//     (from $BATON_STOP_TIMEOUT under baton) one at a time, the i-th of n
//     at i/n of it, each only if still idle (one whose client sent a
//     request meanwhile gets Connection: close on its response); then
//     every one left at once, and any that turns idle later. Their clients
//     reconnect to the next generation as they are closed: a spread keeps
//     thousands of them from coming back in the same instant (HAProxy's
//     close-spread-time). Log "drain window over".
//  4. Wait (-shutdown-timeout) for the other connections: requests in flight
//     (StateActive), and new connections (StateNew), whose first request is
//     answered, with "Connection: close", when it arrives. The wait ends
//     early once no connection is left.
//  5. When -shutdown-timeout runs out, close every connection still open.
//     Exit 1 if that cut a request in flight; else exit 0 (a connection
//     that had not delivered a whole request header loses no request
//     hello read).
//
// A connection has 10 seconds from accept to deliver its first request's
// header (http.Server.ReadHeaderTimeout); net/http closes it then. So a
// connection that sends nothing keeps a draining hello at most 10 seconds
// after the stop signal, and a drain never takes longer than -drain plus
// -close-spread plus -shutdown-timeout.
//
// A client that keeps a connection idle for the whole window and sends its
// next request just as step 3 closes it can still see a failure; a longer
// window makes that rarer. A first request that arrives more than 10 seconds
// after accept, or after step 5, finds its connection closed (the client
// sees EOF or a reset); hello has not read it. Under baton, $BATON_STOP_TIMEOUT
// fits the drain into the worker's stop timeout; with flags that set all
// three, give workers a stop timeout longer than their sum.
//
// Hello reports READY=1 once it serves. It talks to $NOTIFY_SOCKET (under
// baton, the master's socket, never systemd's directly). With a watchdog
// (WATCHDOG_USEC, and WATCHDOG_PID its own pid: baton's [worker] watchdog or
// systemd's WatchdogSec=) it sends WATCHDOG=1 every half interval until it exits.
//
// See sd_listen_fds(3) and sd_notify(3):
// https://www.freedesktop.org/software/systemd/man/latest/sd_listen_fds.html
// https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html
package main
