// Package fs is the bazil.org/fuse adapter of synfs: Synapse projects and
// folders as directories, files as files, with writes staged in the Badger
// cache (package cache) and uploaded later by the flusher (cache/flusher).
//
// # Layers
//
// Each FUSE method here is: look up state, one call into remote.Client, the
// cache or the flusher, and errno(err). The only error → errno mapping is
// errno.go. Nothing below this package imports bazil.org/fuse.
//
// # Nodes
//
// A directory node is keyed by its Synapse ID. A file node is keyed by its
// Synapse ID when it has one and by its staging inode while it exists only in
// the cache, so that a rename keeps the node and the kernel sees one node per
// file (bazil's rule for fs.Node identity). A newer version of a file made
// elsewhere gets a new node (browse.go: the kernel's writeback cache keeps a
// regular file's size as its own, so only a new inode shows the new size).
//
// # Browsing and reading
//
// browse.go: listings are loaded through cache/meta (one fetch per folder at
// a time, stale-while-revalidate); a file version's size, MD5 and the user's
// mtime and mode live in the cache's v/ table, fetched once per version.
// read.go: a file that is only in Synapse is read through the shared block
// cache (cache/blocks) with HTTP Range requests and read-ahead.
//
// # Lock order
//
//	remoteFile.mu < file.mu < FS.mu
//
// remoteFile.mu guards one handle's read-ahead state and is a leaf.
// versions.mu (browse.go) is a leaf. FS.mu guards only the node maps; FS.flightMu
// (the bounded reads under way, offline.go) is a leaf. No lock is held across a network call, a
// cache write or a flusher call, except file.mu while staging a file, which
// serializes the (rare) first write to a file that exists only in Synapse,
// and while keeping the content of a file unlinked while open (unlink.go).
package fs
