package remote

import (
	"errors"
	"fmt"
)

// Error kinds. Test with errors.Is; an *Error matches the kind it carries.
var (
	ErrNotFound        = errors.New("not found")                 // 404
	ErrExist           = errors.New("already exists")            // 409
	ErrStale           = errors.New("changed since it was read") // 412
	ErrPermission      = errors.New("permission denied")         // 403
	ErrNotCertified    = errors.New("not a certified user")      // 403, the certification case; also matches ErrPermission
	ErrUnauthenticated = errors.New("not authenticated")         // 401
	ErrInvalid         = errors.New("invalid request")           // 400 (names, part sizes, ...)
	ErrTooLarge        = errors.New("too large")                 // 413, part or child limits
	ErrTransient       = errors.New("temporarily unavailable")   // 429, 5xx, dropped connections, after retries
	// ErrTokenRefused is the kind of a call refused without trying because
	// Synapse refused the access token (401) and has not accepted one since.
	// It also matches ErrUnauthenticated, ErrOffline and ErrTransient: the
	// cause is the token, and the remedy is to wait (uploads pause) until a
	// valid token is configured.
	ErrTokenRefused = errors.New("Synapse refuses the access token")
)

// Error is a failed Synapse call. Its message never contains the token.
type Error struct {
	Op     string // "POST /entity", "upload part 3", ...
	Status int    // HTTP status, 0 for a transport failure
	Reason string // Synapse's "reason", or the transport error text
	Kind   error  // one of the Err* kinds above
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %v: %s", e.Op, e.Kind, e.Reason)
	}
	return fmt.Sprintf("%s: %d %v: %s", e.Op, e.Status, e.Kind, e.Reason)
}

// Is reports whether target is e's kind (or ErrPermission for a
// not-certified error, ErrTransient for an offline one, and ErrOffline,
// ErrTransient or ErrUnauthenticated for a refused token).
func (e *Error) Is(target error) bool {
	if target == e.Kind {
		return true
	}
	switch e.Kind {
	case ErrNotCertified:
		return target == ErrPermission
	case ErrOffline:
		return target == ErrTransient
	case ErrTokenRefused:
		return target == ErrTransient || target == ErrOffline || target == ErrUnauthenticated
	}
	return false
}

// KindOf maps an HTTP status and Synapse reason to an error kind.
func KindOf(status int, reason string) error {
	switch {
	case status == 400:
		return ErrInvalid
	case status == 401:
		return ErrUnauthenticated
	case status == 403:
		if reason == CertifiedOnlyReason {
			return ErrNotCertified
		}
		return ErrPermission
	case status == 404:
		return ErrNotFound
	case status == 409:
		return ErrExist
	case status == 412:
		return ErrStale
	case status == 413:
		return ErrTooLarge
	case status == 429 || status >= 500:
		return ErrTransient
	}
	return ErrInvalid
}

// CertifiedOnlyReason is the reason Synapse gives when an uncertified user
// tries to create or update a Folder or File. It is the one message matched
// exactly: Synapse gives the case no error code.
const CertifiedOnlyReason = "Only certified users may create or update content in Synapse."

// IsTransient reports whether err is worth retrying later: Synapse was
// unreachable, throttled or failing after the client's own retries.
func IsTransient(err error) bool {
	return errors.Is(err, ErrTransient)
}
