// Package flusher uploads the files staged in a cache.Store to Synapse
// through a remote.Client, scheduling them on a writeback.Queue.
//
// # Upload of one file
//
// The upload function reads the file's record when it starts, so a rename
// made before then is honoured. It then:
//
//  1. marks a 0-byte file StateEmpty ("Synapse refuses 0-byte files") and
//     stops: it stays in the cache and is not retried;
//  2. reuses the multipart parameters persisted for the current generation,
//     or computes the MD5 if unknown and persists new ones (file name, part
//     size, MD5, size, content type), so that after a restart the identical
//     multipart request resumes the same upload;
//  3. sets StateUploading and calls Client.Upload with a reader over the
//     generation's bytes;
//  4. checks that the size and MD5 Synapse reports match, and otherwise
//     retries;
//  5. calls Store.Finish, which deletes the bytes if the file did not change
//     meanwhile; if it did (ErrChanged), the file is queued again.
//
// Permission, certification, invalid-request, too-large, authentication,
// missing-folder and name-taken-by-a-non-file errors are permanent: the
// file becomes StateFailed with a plain reason, keeps its bytes, and is
// retried only when it is written again or at the next start. Everything
// else is retried with backoff.
package flusher
