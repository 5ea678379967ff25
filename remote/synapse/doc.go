// Package synapse implements remote.Client over Synapse's REST API
// (repo, file and auth services), and exports lower-level calls that map one
// to one onto REST endpoints with JSON types that keep the wire names.
//
// # Configuration
//
// New takes a Config; zero fields take defaults (production endpoints, 3 REST
// calls in flight, 600 calls a minute, 8 parts in flight per upload, 10
// retries between 250ms and 30s). Endpoints builds the three base URLs from
// one server address, which is how the emulator is reached.
//
// LoadSettings reads the official Python client's configuration with its
// precedence. The file is ~/.synapseConfig unless a path is given. The
// credentials section is [default], or [profile NAME] for a profile chosen
// by argument or SYNAPSE_PROFILE; the legacy [authentication] section is
// read only when the chosen section is absent. An authtoken in the file
// beats the SYNAPSE_AUTH_TOKEN environment variable. The [endpoints]
// section's repoEndpoint, fileHandleEndpoint and authEndpoint override the
// production endpoints one by one.
//
// # Limits
//
// Synapse throttles each user to 3 concurrent calls and 600 calls a minute,
// answering 429 beyond that. Every REST call first waits on a token bucket
// (RatePerMinute, with a burst of a tenth of it) and then on a semaphore of
// MaxConcurrent slots, held until the response body has been read. Transfers
// to and from presigned URLs (part PUTs, ranged GETs) go straight to storage
// and bypass both; PartConcurrency bounds them per upload instead.
//
// # Retries
//
// A call that gets 429, 500, 502, 503 or 504, or fails in transport, is
// retried up to MaxRetries times. The wait before retry n is RetryBase·2ⁿ,
// capped at RetryCap, times a random factor in [0.5, 1.5); a Retry-After
// header raises it (up to RetryCap). Other statuses (400, 401, 403, 404, 409,
// 412, ...) are final at once. What reaches the caller is a *remote.Error
// whose Kind comes from remote.KindOf(status, reason), with Synapse's
// "reason" parsed from the body (bodies are read up to a cap and never
// trusted to be JSON); transport failures, and retries exhausted, carry
// remote.ErrTransient. A cancelled context gives an error wrapping
// context.Canceled.
//
// Each call site declares whether a blind retry is safe. Reads, PUTs with an
// etag precondition, multipart calls (Synapse keys them on the request) and
// deletes are retried freely. Creating an entity (POST /entity) is not: it is
// retried only after a 429 or a failed dial, when the server certainly did
// not act. After any other failure the client looks the name up first and
// sends the POST again only when the name is absent.
//
// # Exactly-once uploads
//
// Upload finds the target File entity (by ID, or by name under the parent)
// before moving any bytes; if its data file already has the request's MD5 and
// size, it returns it unchanged, so repeating an upload never adds a version.
// The multipart request is a pure function of the upload request (file name,
// size, MD5, part size, content type from a fixed table, the parent's storage
// location, generatePreview false), so a repeated or resumed upload gets
// Synapse's existing upload back: only parts whose partsState is '0' are
// sent, and a completed upload yields its file handle with nothing sent.
// Parts are streamed from the source (hashed in a first pass, then PUT with
// an exact Content-Length), so memory stays bounded whatever the file size;
// a part whose add fails (ADD_FAILED) is sent again. After completion the
// handle's size and MD5 are checked against the request. The handle is then
// attached: a new entity is created with the lookup-before-repost rule
// above, and an existing one is updated only if it does not already point at
// this handle or this content; a 412 restarts from a fresh read.
//
// # Secrets
//
// The token is sent only as a bearer token to the REST endpoints, never to
// presigned URLs. Error messages and log records are scrubbed of it.
package synapse
