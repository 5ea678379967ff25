// Package writeback is a generic write-back queue: items identified by a
// uint64 are uploaded by a caller-supplied function after a delay that
// merges rewrites, with at most a fixed number of uploads at a time and
// exponential backoff after failures.
//
// It knows nothing about what it uploads; package cache/flusher builds the
// upload functions. The design follows rclone's vfs writeback: one mutex, a
// heap of items ordered by due time and a single timer, plus a Flush
// barrier for whoever must wait for uploads (rename of a file being
// uploaded, tests; a future drain on unmount).
//
// # Item life
//
//	Add/AddNow ──► waiting ──(due, a transfer slot free)──► uploading
//	uploading ──(nil)──► removed from the queue
//	uploading ──(error)──► backoff ──(due)──► uploading
//	uploading ──(Permanent error)──► failed (kept until Add or Remove)
//	uploading ──(Add again)──► its context is cancelled; when the upload
//	returns, the item waits again with the new upload function
//
// # Locking
//
// Queue.mu protects every field of the queue and of its items. Upload
// functions run without it, each in its own goroutine.
package writeback
