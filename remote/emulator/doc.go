// Package emulator is a local emulator of Synapse's REST API (synapse.org),
// an http.Handler that the project's tests serve on httptest.Server and that
// `synfs emulator` serves on a real listener. It enforces Synapse's rules, so
// that a client that works against it works against Synapse, and it answers
// the call sequences of the official Python client, synapseclient.
//
// A Server holds users (authenticated by token), Projects, Folders and
// FileEntities with versions, ACLs, annotations and a trash can, file
// handles, and multipart uploads. With Options.DataDir it keeps its state in
// that directory (a JSON snapshot, state.json, rewritten atomically before
// every answer that follows a change; tokens are stored only as SHA-256
// hashes) and every uploaded part in its own file under blobs/, so a restart
// on the same directory sees the same users, entities, handles and uploads in
// progress. Without DataDir everything is in memory. A completed file's bytes
// are not copied: its handle lists its parts, and reads map offsets onto
// them, so multi-gigabyte files cost no second copy and bounded memory.
//
// # Routes
//
// Probes: GET /, /repo/v1, /file/v1, /auth/v1 answer 200.
//
// Repository service, under /repo/v1:
//
//	GET    /userProfile, /userProfile/, /userProfile/{id}
//	GET    /user/{id}/certifiedUserPassingRecord
//	POST   /entity
//	GET    /entity/{id}             PUT /entity/{id}[?newVersion=true]    DELETE /entity/{id}[?skipTrashCan=]
//	GET    /entity/{id}/type, /entity/{id}/benefactor
//	GET    /entity/{id}/version[?offset=&limit=]   GET|DELETE /entity/{id}/version/{n}
//	POST   /entity/child, /entity/children
//	GET    /projects[?filter=&sort=&sortDirection=&nextPageToken=]
//	GET    /entity/{id}/permissions, /entity/{id}/acl
//	GET    /entity/{id}/annotations2, /entity/{id}/version/{n}/annotations2   PUT /entity/{id}/annotations2
//	POST   /entity/{id}/bundle2, /entity/{id}/version/{n}/bundle2
//	GET    /entity/{id}/generatedBy, /entity/{id}/version/{n}/generatedBy (always 404)
//	GET    /entity/{id}/file, /entity/{id}/version/{n}/file (307, or 200 text with redirect=false)
//	GET    /entity/md5/{md5}
//	GET    /trashcan/view   PUT /trashcan/trash/{id}, /trashcan/restore/{id}[/{parentId}], /trashcan/purge/{id}
//
// File service, under /file/v1:
//
//	GET    /entity/{id}/uploadDestination
//	POST   /file/multipart[?forceRestart=]
//	POST   /file/multipart/{uploadId}/presigned/url/batch
//	PUT    /file/multipart/{uploadId}/add/{part}?partMD5Hex=
//	PUT    /file/multipart/{uploadId}/complete
//	GET    /fileHandle/{id}, /fileHandle/{id}/url
//	POST   /fileHandle/batch
//	GET    /file/{id}?fileAssociateType=&fileAssociateId=[&redirect=false]
//
// Presigned URLs point back at the host the request came in on (r.Host):
//
//	PUT    /s3/upload/{uploadId}/{part}?X-Amz-Date=..&X-Amz-Expires=900&X-Amz-Signature=..
//	GET    /s3/blob/{handleId}?X-Amz-Date=..&X-Amz-Expires=30&response-content-disposition=..&X-Amz-Signature=..
//
// Their signature is an HMAC-SHA256, with a secret kept in the state, over
// the path, X-Amz-Date, X-Amz-Expires and, when the part URLs were requested
// with a contentType, that content type (which the PUT must then send). A
// tampered or expired URL gets 403 with an S3-style XML body. Presigned
// requests need no Authorization (one sent is ignored) and are not
// throttled. Blob GETs support Range (206 with Content-Range, 416 when out of
// range) with http.ServeContent semantics and are streamed from the parts.
//
// The emulator's own admin routes, which Synapse does not have, need no
// token and are not counted:
//
//	GET    /emulator/v1/requests   {"total":N,"routes":{"<METHOD> <pattern>":n,...}}
//	DELETE /emulator/v1/requests   resets those counters
//
// They report the REST calls answered by route (Server.RequestCounts from
// Go), the figure that matters against Synapse's per-user budget.
//
// Unknown routes get 404, known paths with another method 405. Every error
// is {"concreteType":"org.sagebionetworks.repo.model.ErrorResponse","reason":...},
// except 429s, whose body is {"reason":...} only.
//
// # Rules enforced
//
// Authentication: "Authorization: Bearer TOKEN" or a sessionToken header.
// An unknown token, or an Authorization header that is not a bearer token,
// gets 401 "Invalid access token" with WWW-Authenticate: Bearer
// realm="Synapse Repository Services". No token is the anonymous user, who
// can read only what was granted to PUBLIC and can write nothing.
//
// Entity creation checks, in Synapse's order: the raw name length (256) and
// the description length (1000); the parent's type; FileEntity's
// dataFileHandleId (required) and fileNameOverride (must be null); the name
// rules of remote.NameProblem on the trimmed name (Java's trim: characters
// up to U+0020); a missing or trashed parent (404 "The given parent: X does
// not exist", X as sent); anonymous (403); certification for anything but a
// Project (403 remote.CertifiedOnlyReason, before the ACL check); CREATE on
// the parent; the limits (10000 children, depth 50); the caller owning the
// file handle; and finally the (parent, name) conflict (409, case-sensitive
// and byte-exact; Projects share the root syn4489, so their names are
// global). A null name becomes the new ID.
//
// Update (PUT) requires id, etag and parentId and the name, then checks the
// same validations, certification (non-Projects), UPDATE, the etag (412),
// and for a move: the new parent, cycles (400), CREATE on the new parent and
// the limits. A FileEntity gets a new version when newVersion=true, or when
// dataFileHandleId changes to a handle with another MD5 (label reset to the
// version number, comment cleared); a new handle with the same MD5 updates
// the current version in place. At most 15000 versions. Every change issues
// a new etag.
//
// Delete moves the entity to the trash (parent becomes the trash folder
// syn1681355, name becomes its ID, a record keeps the original parent and
// name); its subtree counts as trashed, reads give 404 "Entity synN is in
// trash can.", lookups no longer find the old name, and deleting a missing
// or trashed entity is a 204 no-op.
//
// Permissions: the creator of a Project has every access type on it; others
// have none unless Grant adds an ACL entry. An entity's ACL, or its nearest
// ancestor's, governs it. Listings leave out what the caller cannot READ;
// downloads need DOWNLOAD.
//
// Annotations (v2) need the entity's current etag (412 otherwise) and
// UPDATE plus certification, check the key pattern and the reserved
// _accessRequirementIds, at most 100 keys, 1000 values per key, 1000
// characters per string value and 100,000 per key, and the value types, and
// issue a new entity etag and modifiedOn.
//
// Multipart: fileName, fileSizeBytes, partSizeBytes and contentMD5Hex are
// required; the file name follows the entity name rules; size at least one
// byte ("File size must be at least one byte") and at most 5 TiB; part size
// 5 MiB to 5 GiB; at most 10000 parts. Uploads are keyed on the caller and
// the MD5 of the request's canonical JSON: the same request resumes the same
// upload with its current partsState, or returns the COMPLETED status and
// handle of a finished one; forceRestart=true starts afresh. Only the
// starter may get part URLs, add parts or complete. A presigned part PUT
// needs Content-Length (411 otherwise) and answers 200 with the part's MD5
// as ETag. Adding a part answers 201 with ADD_SUCCESS, or ADD_FAILED with
// Synapse's MD5 message or a "part never uploaded" message; after completion
// it is a 400. Completion needs every part (400 "Missing N part(s).  ..."),
// refuses a non-last part under 5 MiB as S3 does, sets contentSize from the
// stored bytes and contentMd5 from the request, and is idempotent.
// Uploading needs no certification.
//
// Throttling (Options.Throttle): more than MaxConcurrent (3) REST calls in
// flight for one user get 429 "Too many concurrent requests. Allowed 3
// concurrent connections at any time." with no Retry-After; with
// RatePerMinute, calls beyond that many in 60 seconds get 429 "Requests are
// too frequent. Allowed N requests every 60 seconds.". Anonymous callers and
// presigned transfers are not throttled.
//
// A POST or PUT with a non-empty body whose Content-Type is set and is not
// JSON gets 415.
//
// # Choices where Synapse's behaviour is unconfirmed, and deviations
//
//   - Completion verifies the whole file's MD5 against contentMD5Hex and
//     answers 400 "The MD5 of the assembled file (X) does not match the
//     contentMD5Hex of the upload request (Y)" on a mismatch. Synapse seems
//     not to check; the emulator is stricter so that client bugs show.
//   - The upload key hashes the request as sent after filling in the default
//     concreteType: a null storageLocationId and 1 are different requests.
//   - An uncertified user's certifiedUserPassingRecord is 404 (as for a user
//     who never took the quiz), which synapseclient reads as not certified.
//   - Moving an entity that inherits its permissions to a parent with another
//     benefactor needs CHANGE_PERMISSIONS on it; moves within one benefactor
//     need only UPDATE and CREATE on the new parent.
//   - Trashing keeps the subtree's ACLs (nothing in the trash is readable
//     anyway), so a restored entity has its old permissions. Restore needs
//     the caller to be the one who deleted it and CREATE on the parent.
//     Purge removes the subtree at once.
//   - PUT /entity with newVersion=true on a Project or Folder is ignored.
//     With newVersion=true, a versionLabel already used by another version is
//     replaced by the version number.
//   - PUT /entity is a full replacement: an absent description is cleared. A
//     null name is refused (400 "Entity name cannot be null").
//   - Entity types other than Project, Folder, FileEntity and Link are
//     refused (400). A Link keeps linksTo as sent (unchecked, not
//     followed) and can have no children.
//   - Messages that synapse-api.md does not give are the emulator's own:
//     fileNameOverride set, id/parentId missing on update, unknown handle
//     (404 "FileHandle: 'N' does not exist"), empty partNumbers, the MD5
//     mismatch above, and the "part never uploaded: ..." ADD_FAILED text.
//   - VersionInfo's contentSize is a decimal string.
//   - Folders and Projects report their revision (1 + the number of updates)
//     as versionNumber in EntityHeaders.
//   - Previews are never generated; with generatePreview false the handle's
//     previewId is its own ID, as in Synapse.
//   - The snapshot is not fsynced: it survives a crash of the process, not
//     of the machine.
//   - Uploads are never garbage-collected; parts replaced before being added
//     are deleted, parts replaced after being added are kept.
//
// # Faults
//
// Server.AddFault installs a Fault; ParseFault reads the command-line form:
// fields separated by ":", first the route, then effects and conditions:
//
//	ROUTE[:NNN][:p=F][:n=N][:latency=D][:stall=D][:drop-after-bytes=N][:drop-after-handling][:method=M]
//
// ROUTE is "*" (every request), a route pattern ("POST /repo/v1/entity",
// "GET /repo/v1/entity/{id}"), a concrete "METHOD path", or either without
// the method ("/repo/v1/entity/{id}"); a ROUTE ending in "/" is a prefix
// ("PUT /s3/" is every part upload). NNN answers with that status (429 with
// the throttle body) without handling; p= fires with that probability
// (Options.FaultSeed makes it repeatable); n= only for the first N matching
// requests; latency= waits before handling; stall= holds the answer back
// after handling; drop-after-bytes= cuts the request body (then the request
// is not handled) or the response body after N bytes and closes the
// connection; drop-after-handling handles the request, keeps its effects and
// closes the connection without answering. Examples:
//
//	PUT /s3/:503:p=0.2
//	POST /repo/v1/entity:drop-after-handling:n=1
//	*:latency=20ms
//
// # Inspection
//
// Tests read the state directly with Entity, Children, FileBytes and
// OpenFile, count calls with Stats, and see the recent requests (method,
// route pattern, path, status, user, whether a fault fired) with Requests.
package emulator
