package control

import "time"

// StatusFormat is the version of the Status JSON format.
const StatusFormat = 1

// File states in Status, beyond the cache's own.
const (
	StateOpen      = "open"      // being written (handles open)
	StateDirty     = "dirty"     // closed, waiting for its upload to start
	StateUploading = "uploading" // an upload is in progress
	StateRetrying  = "retrying"  // the last attempt failed for a passing reason; NextAttempt says when
	StateFailed    = "failed"    // Synapse refused it; Error says why; kept until retry or discard
	StateEmpty     = "empty"     // 0 bytes: Synapse refuses empty files; kept, never uploaded
	StateLocal     = "local"     // the name matches a local-only pattern (editor or desktop junk); kept, never uploaded
)

// Status is a running mount's view of what is not yet in Synapse.
type Status struct {
	Format     int       `json:"format"`     // StatusFormat
	Time       time.Time `json:"time"`       // when the status was taken
	PID        int       `json:"pid"`        // the mount's process
	Mountpoint string    `json:"mountpoint"` // as mounted
	CacheDir   string    `json:"cache_dir"`
	Endpoint   string    `json:"endpoint"` // the Synapse repository endpoint (or "emulator:DIR")
	User       string    `json:"user"`     // the Synapse user name
	UserID     string    `json:"user_id"`
	Files      []File    `json:"files"` // every staged file not yet in Synapse, sorted by path
	Totals     Totals    `json:"totals"`
	Refused    []Refusal `json:"refused"` // recently refused operations, oldest first (at most 20)
	// Problem, when set, says why the cache cannot take new bytes now (its
	// directory was deleted or replaced, or its disk is full).
	Problem string `json:"problem,omitempty"`
	// Synapse says whether the mount reaches Synapse.
	Synapse Connection `json:"synapse"`
	// Process is the mount process's goroutines and Go memory.
	Process *Process `json:"process,omitempty"`
}

// Connection is whether the mount reaches Synapse, and when it asks again.
type Connection struct {
	Online    bool       `json:"online"`
	Since     *time.Time `json:"since,omitempty"`      // when it went offline (or came back)
	NextProbe *time.Time `json:"next_probe,omitempty"` // offline: when synfs next asks
	Reason    string     `json:"reason,omitempty"`     // offline: why, in the transport's or Synapse's words
	// TokenRefused: Synapse answers but refuses the access token (401);
	// uploads wait until a valid token is configured.
	TokenRefused bool   `json:"token_refused,omitempty"`
	Text         string `json:"text"` // one line for people: "Synapse: offline since …"
}

// File is one staged file.
type File struct {
	ID          uint64     `json:"id"`        // the staged file's number (inode), stable while it is staged
	Path        string     `json:"path"`      // under the mount ("/Project/folder/name"), or "synID/name" while the folder's path is not known
	ParentID    string     `json:"parent_id"` // the Synapse folder it goes to
	Name        string     `json:"name"`
	State       string     `json:"state"` // one of the State constants
	Size        int64      `json:"size"`
	BytesDone   int64      `json:"bytes_done"` // bytes of the upload in progress that are in Synapse
	PartsDone   int        `json:"parts_done"`
	PartsTotal  int        `json:"parts_total"` // 0 when no upload is in progress
	Attempts    int        `json:"attempts"`
	Error       string     `json:"error,omitempty"`        // the last failure, in Synapse's words
	NextAttempt *time.Time `json:"next_attempt,omitempty"` // when a dirty or retrying file starts next
	Incomplete  bool       `json:"incomplete,omitempty"`   // a write to it failed: failed for good until it is copied again
}

// Totals sums up Files, plus what the mount uploaded since it started.
type Totals struct {
	Files         int            `json:"files"`
	Bytes         int64          `json:"bytes"`
	BytesToGo     int64          `json:"bytes_to_go"` // bytes of files to upload (not failed, not empty) not yet in Synapse
	ByState       map[string]int `json:"by_state"`
	UploadedFiles int            `json:"uploaded_files"` // since the mount started
	UploadedBytes int64          `json:"uploaded_bytes"`
	Rate          float64        `json:"rate"`                  // bytes per second over the last 30 s
	ETASeconds    *float64       `json:"eta_seconds,omitempty"` // BytesToGo / Rate, when Rate > 0
	CacheUsed     int64          `json:"cache_used"`
	CacheMax      int64          `json:"cache_max"` // 0 = no limit
}

// Refusal is an operation the mount refused, with Synapse's own reason.
type Refusal struct {
	Time    time.Time `json:"time"`
	Errno   string    `json:"errno"`   // what the program saw, e.g. "invalid argument"
	Message string    `json:"message"` // operation, path and reason
}

// Waiting reports whether f is still to arrive in Synapse by itself:
// not failed, not empty and not local.
func (f File) Waiting() bool {
	return f.State != StateFailed && f.State != StateEmpty && f.State != StateLocal
}
