package control

// Operations.
const (
	OpStatus  = "status"
	OpRetry   = "retry"   // Path, or All: queue failed (and retrying) files now
	OpDiscard = "discard" // Path: delete a failed or empty staged file from the cache
	OpUnmount = "unmount" // unmount now; staged files stay for the next mount
)

// Request is what the command line sends.
type Request struct {
	Op   string `json:"op"`
	Path string `json:"path,omitempty"` // a File's Path (or "synID/name", or its ID as a number)
	All  bool   `json:"all,omitempty"`
}

// Response is the mount's answer.
type Response struct {
	Error  string   `json:"error,omitempty"`
	Status *Status  `json:"status,omitempty"`
	Files  []string `json:"files,omitempty"` // paths that retry or discard acted on
	// Busy lists nothing itself: an unmount refused because the mount is
	// busy sets it, and the command line finds the processes.
	Busy bool `json:"busy,omitempty"`
}
