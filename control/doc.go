// Package control is the channel between the synfs command line and a
// running mount: `synfs status`, `wait`, `unmount`, `retry` and `discard`
// talk to the mount that serves a mountpoint through it.
//
// The channel is a unix socket, SocketName in the mount's cache directory
// (mode 0600 in a 0700 directory). The server also checks that the peer
// runs as the same user (SO_PEERCRED). The command line finds the cache
// directory from the mountpoint: a mount's source in /proc/self/mountinfo
// is "synfs:" followed by its cache directory (FSName).
//
// The protocol is one JSON Request per connection, answered by one JSON
// Response, both on one line. Status is the stable, documented --json
// format (docs/operations.md); its Format field changes only when a field
// changes meaning or is removed.
package control
