// Command synfs mounts Synapse (synapse.org) as a file system, so that
// research data is uploaded with cp, cp -r, rsync, tar -x or a file manager.
//
// Usage:
//
//	synfs mount MOUNTPOINT [flags]
//	synfs status [MOUNTPOINT] [--json] [--watch]
//	synfs wait [MOUNTPOINT] [--timeout D]
//	synfs unmount MOUNTPOINT [--now]
//	synfs retry PATH|--all
//	synfs discard PATH
//	synfs annotate MANIFEST [--mount MOUNTPOINT] [--dry-run]
//	synfs emulator [flags]
//	synfs version
//	synfs help [COMMAND]
//
// # synfs mount
//
// Mounts the caller's Synapse projects (or, with --root synID, one project
// or folder) at MOUNTPOINT, which must be an empty directory. Projects and
// folders are directories; files are files. Bytes written are staged in a
// Badger write cache under --cache-dir (default ~/.cache/synfs/HOST-USERID,
// one per Synapse endpoint and user; mode 0700)
// and uploaded in the background with Synapse's multipart upload; close(2)
// returns once they are in the cache and fsync(2) once they are on disk.
// Staged files not yet uploaded survive kill -9 and reboots: they are
// uploaded when synfs mounts the same cache directory again.
//
// The token is read like the official client reads it: ~/.synapseConfig
// (--config), section [default] (or [profile NAME], --profile), else the
// legacy [authentication] section, key authtoken; then SYNAPSE_AUTH_TOKEN.
// With no token and no --endpoint, synfs mounts an embedded emulator with a
// demo project, so that it can be tried without an account.
//
// The cache records the endpoint and user it stages for; a mount of another
// endpoint or user is refused while files are staged (--adopt-staged takes
// over files from a cache that recorded none).
//
// The mount runs in the foreground (SIGINT or SIGTERM unmounts it at once; a
// second one detaches a busy mount), or in the background with --daemon,
// logging to --log-file (default CACHE_DIR/synfs.log). The file
// MOUNTPOINT/.synfs/status lists every staged file with its state.
//
// # synfs status, wait, unmount, retry, discard
//
// These talk to the running mount through its control socket,
// CACHE_DIR/control.sock (package control), found from MOUNTPOINT in the
// mount table. status lists every file not yet in Synapse (--json: the
// stable format of docs/operations.md); wait blocks until every file staged
// when it started is in Synapse (exit 0; 1 when some failed for good; 3 on
// --timeout; 4 when no mount answers); unmount waits likewise and then
// unmounts (--now: at once; exit 5 when busy); retry queues failed files
// again; discard deletes a failed or empty staged file.
//
// Flags:
//
//	--endpoint URL          Synapse base URL (URL/repo/v1, URL/file/v1, URL/auth/v1)
//	--config FILE           Synapse config file (default ~/.synapseConfig)
//	--profile NAME          config profile section
//	--cache-dir DIR         write cache directory
//	--cache-max-size SIZE   most not-yet-uploaded data to hold, e.g. 50G
//	--root synID            mount this project or folder only
//	--writeback-delay D     wait after close before uploading (default 5s; 0: none)
//	--transfers N           files uploaded at once (default 16)
//	--parts N               parts of one file in flight (default 8)
//	--rest-concurrency N    Synapse REST calls in flight (default 3, Synapse's limit)
//	--rest-rate N           Synapse REST calls per minute (default 600, Synapse's limit)
//	--attr-ttl D            kernel attribute cache time (default 1s; listings 10x)
//	--allow-other           let other users see the mount
//	--emulator              mount the embedded emulator even with a token
//	--daemon                run in the background once the mount answers
//	--log-file FILE         log here (default stderr; CACHE_DIR/synfs.log with --daemon)
//	--adopt-staged          take over files staged by a synfs that recorded no owner
//	--stage-folders         stage every mkdir, create folders in the background
//	--debug-pprof ADDR      serve Go runtime profiles on a loopback address (off)
//	-v                      verbose log
//
// Every file and folder has extended attributes: user.synapse.id, .version,
// .md5 and .etag (read-only), user.synfs.state (uploaded, dirty, uploading,
// failed: REASON, empty), and user.KEY for each Synapse annotation KEY, which
// setfattr sets and removes. See docs/semantics.md for how values are typed.
//
// # synfs annotate
//
// Applies a manifest in the format of "synapse manifest" and "synapse sync"
// (a TSV with path and parent, optional name, one column per annotation) to
// the files in a synfs mount: each row is matched to the file name (or the
// base name of path) in the folder whose Synapse ID is parent, uploaded or
// still staged, and each annotation cell is set as user.KEY. Rows that match
// nothing are reported, and the exit code is 1. --dry-run shows what would
// change. --mount names the mount when there are several. The provenance
// columns are not applied.
//
// # synfs emulator
//
// Serves a local emulator of Synapse's REST API: see docs/emulator.md.
//
//	--addr HOST:PORT        listen address (default 127.0.0.1:8780)
//	--data DIR              keep state and bytes in DIR across restarts
//	--token TOKEN           the demo user's token (default random, printed)
//	--user NAME:TOKEN[:uncertified]   more users (repeatable)
//	--fault SPEC            inject a fault (repeatable), e.g. "PUT /s3/:503:p=0.2"
//	--throttle              429 past 3 concurrent REST calls per user
//
// # Limitations
//
// Synapse keeps no modes, owners or links; chown succeeds without effect,
// and the mtime and mode given through the mount are kept in --cache-dir
// only (another machine sees Synapse's modifiedOn and 0644). Extended
// attributes outside user. are not kept (ENOTSUP). Entities other than
// projects, folders and files are hidden. Empty files stay in the cache (Synapse
// refuses 0-byte files). While Synapse is unreachable, files and folders are
// staged and listings answered from what the mount has seen; rm and mv of
// uploaded entities, reading uploaded files and listing folders never seen
// fail at once with ENOTCONN. Ctrl-C does not wait for uploads; synfs unmount does. See
// docs/semantics.md.
package main
