// Package load is baton's HTTP load generator: a fixed number of concurrent
// clients, each making one GET after another against a loopback address,
// either on one keep-alive connection per client or on a new connection per
// request, until a time limit or a request count is reached.
//
// It exists to count the requests a server loses while it upgrades, reloads
// or rolls back, so it never hides one:
//
//   - Every request is sent once. A failed request is counted, classified
//     (refused, reset, EOF, timeout, non-2xx, other) and not retried; the
//     client's next request opens a new connection.
//   - The client is a raw HTTP/1.1 client on net.Conn (write the request,
//     read the response with bufio and http.ReadResponse). net/http's
//     Transport is not used: it silently resends an idempotent request whose
//     reused connection died before any byte of the response, which is
//     exactly the failure measured here.
//   - A response with "Connection: close" is a success; the client opens a
//     new connection for its next request, as a browser would.
//   - Targets are loopback addresses only; anything else is refused.
//
// Idle (StartIdle) is the other load: many long-lived connections, each idle after one
// request, that reconnect at once when the server closes them (websocket-like clients);
// it times the reconnects, for the peak rate a drain causes.
//
// Latency is measured from the start of a request (including the dial when
// the request needs a new connection) to the last byte of its response, and
// kept in a log-linear histogram with 1/128 relative precision.
//
// See RFC 9112 (HTTP/1.1) §9.6 on connection closing and the race between
// a server closing an idle connection and a client's next request.
package load
