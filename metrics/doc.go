// Package metrics is baton's Prometheus endpoint: the counts the master in charge keeps,
// and the connections each generation's workers hold, read from the kernel at scrape time.
//
// The master loop owns a Counts and publishes a Snapshot of itself after every event it
// handles (Publisher.Publish, an atomic pointer swap); the HTTP handler reads the last
// snapshot and never waits on the loop. Counts are plain data, so an old master hands its
// totals to the new one at the commit of an upgrade (Counts.Add), and a counter never goes
// down across an upgrade that commits.
//
// The connections are counted without the workers' help: the sockets of every process of a
// generation (its workers and their descendants, /proc/PID/fd) are matched by inode to the
// kernel's TCP sockets (NETLINK_SOCK_DIAG, inet_diag), IPv4 and IPv6. Unix-socket
// connections are not counted.
//
// The endpoint is read-only and exposes counts and the master's version and pid, nothing
// else: no configuration, no command line, no client address.
//
// See also: sock_diag(7), proc(5) /proc/PID/task/TID/children, and Prometheus's
// "Metric and label naming" and "Writing exporters".
package metrics
