// Package remote is synfs's contract with Synapse: the Client interface that
// the file system and the flusher use, the Entity and UploadRequest types,
// the error kinds that fs/errno.go maps to errnos, and Synapse's name rules.
//
// It imports only the standard library. remote/synapse implements Client over
// Synapse's REST API; remote/emulator serves that API locally; remote/remotetest
// holds the conformance suite that every Client must pass.
package remote
