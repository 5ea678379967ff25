// Package remotetest holds the conformance suite for remote.Client
// implementations, and helpers for benchmarking them.
//
// Run exercises a Client against a parent container it may write in: it
// creates a uniquely named folder there, runs every subtest inside it, and
// trashes it at the end. The emulator's tests call Run with clients for
// several users (certified, uncertified, without access, with a bad token);
// Live builds an Env for real Synapse from SYNFS_TEST_TOKEN and
// SYNFS_TEST_PARENT, skipping when they are unset, with smaller sizes so
// that live runs stay cheap.
//
// Pattern is a deterministic io.ReaderAt of any size that holds nothing in
// memory; BenchUpload uses it to measure upload throughput.
package remotetest
