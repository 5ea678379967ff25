// Package cache is synfs's durable write cache: files written under the
// mount are staged here until the flusher has uploaded them: their bytes in
// the arena file (arena.go), everything else in Badger.
// It is the only package that imports Badger.
//
// A staged file is identified by an ino allocated by the Store. Its bytes
// are kept in fixed-size chunks (1 MiB by default); its Record holds the
// target (parent folder ID, name, entity to overwrite), size, MD5 when
// known, a generation bumped by every change, modification time, upload
// state and the multipart parameters of the upload in progress.
//
// # Key schema
//
// Every key starts with a one-letter table name and '/'. Integers are
// big-endian, so byte order is numeric order. cache/keys.go is the only
// place that builds or parses keys.
//
//	f/<ino:8>                 record: JSON of Record (with Upload inline)
//	b/<ino:8><chunk:8>        chunk pointer: arena slot (8 bytes) and length
//	                          (4) of bytes [chunk·ChunkSize, …) of the file,
//	                          at most ChunkSize, cut at the size when written;
//	                          a missing chunk, or bytes past the length, read
//	                          as zeros
//	c/<ino:8><chunk:8>        the chunk's bytes, as synfs kept them before the
//	                          arena; moved into the arena at Open
//	x/<parentID>\x00<name>    index: the ino staged at that location (8 bytes);
//	                          a prefix scan of x/<parentID>\x00 lists a folder
//	d/<ino:8>                 pending marker, empty value: present exactly when
//	                          the record's state is Open, Dirty, Uploading or
//	                          Failed; a key-only scan finds the work left
//	i/next                    counter: the next ino not reserved (8 bytes);
//	                          inos are reserved 1024 at a time
//	g/flush                   scratch key the garbage collector writes and drops
//	                          to force a memtable flush
//	v/<entityID>\x00<ver:8>   version: JSON of Version, what one version of a File
//	                          entity never changes (size, MD5) and the mtime and
//	                          mode the user gave it; read by Versions, written by
//	                          PutVersion and SetVersionAttrs; never deleted
//	m/<ino:8>                 staged folder: JSON of Folder (folder.go)
//	n/<parentID>\x00<name>    folder index: the staged folder at that location,
//	                          present exactly while it has no entity
//
// # Consistency
//
// Writes are assembled into whole chunks in memory per file; a complete
// chunk is hashed and committed to Badger by the file's pipe, off the
// write's path (pipe.go). The record is written by Flush (close(2)), after
// the pipe has drained and the remaining chunks are written, so its Size
// never claims bytes that are not written. Before the first chunk written
// after a Flush reaches the pipe or Badger, the record is marked Open with MD5 "" and a new generation: after a crash the
// file is uploaded as of its last flush (chunks past Size are deleted at
// Open) and its MD5 is recomputed. Truncate writes the smaller size before
// deleting chunks.
//
// An upload snapshots a generation (Reader, ComputeMD5); Reader fails with
// ErrChanged as soon as the file changes, and Finish(ino, gen) deletes the
// file's bytes only if the generation is still gen. Files uploaded while
// handles are open stay readable until the last Release.
//
// # Space
//
// Used counts the staged bytes (file sizes) against Options.MaxSize; a write
// that would exceed it waits for Finish or Remove to free space, then fails
// with ErrNoSpace after Options.SpaceWait. A deleted chunk's arena slot is
// punched out at once. Badger's own garbage (records) is reclaimed by a
// garbage collector owned by the Store, on a ticker and after every 64 MiB
// deleted. Because Badger learns that a value is garbage only when
// compaction meets its deletion, the collector first forces a memtable
// flush and level-0 compaction.
//
// # Locking
//
// Lock order: Store.closeMu (read) < per-ino lock < Store.mu. The per-ino
// lock serialises every change to one file's record and chunks, including
// the File's in-memory state; Store.mu guards the tables of open files and
// locks and the space accounting. Badger calls are made under the per-ino
// lock but never under Store.mu. A file's pipe (pipe.go) writes and commits
// whole chunks from its own goroutine without the per-ino lock; its mutex is
// a leaf, and every holder of the per-ino lock that touches the file's
// chunks drains the pipe first. File.smu (the file's chunk slots) and the
// arena's slot allocator (slots.mu) are leaves too.
package cache
