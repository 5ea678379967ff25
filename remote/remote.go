package remote

import (
	"context"
	"io"
	"time"
)

// Kind is the kind of a Synapse entity as synfs sees it.
type Kind int

// The entity kinds synfs distinguishes. Every other Synapse type (tables,
// links, views, Docker repositories, ...) is KindOther.
const (
	KindOther Kind = iota
	KindProject
	KindFolder
	KindFile
)

// String returns the lowercase Synapse EntityType name of k.
func (k Kind) String() string {
	switch k {
	case KindProject:
		return "project"
	case KindFolder:
		return "folder"
	case KindFile:
		return "file"
	}
	return "other"
}

// IsContainer reports whether entities of kind k can have children.
func (k Kind) IsContainer() bool { return k == KindProject || k == KindFolder }

// Entity is the part of a Synapse entity that synfs uses. Fields that do not
// apply to the entity's kind are zero.
type Entity struct {
	ID       string // "syn123"
	Name     string
	ParentID string // "" for a Project as seen by synfs (Synapse's root is hidden)
	Kind     Kind
	Type     string // Synapse concreteType, e.g. "org.sagebionetworks.repo.model.FileEntity"
	Etag     string

	CreatedOn  time.Time
	ModifiedOn time.Time

	// Files only.
	Version      int64  // versionNumber, 1 for the first version
	FileHandleID string // dataFileHandleId
	Size         int64  // contentSize of the data file handle; -1 when unknown
	MD5          string // contentMd5 of the data file handle, lowercase hex; "" when unknown
}

// User is the caller as Synapse knows them.
type User struct {
	ID        string // ownerId, the principal ID
	UserName  string
	Certified bool // passed the Certified User quiz and not revoked
}

// Permissions is what the caller may do to one entity (UserEntityPermissions).
type Permissions struct {
	CanView                 bool
	CanEdit                 bool
	CanAddChild             bool
	CanDelete               bool
	CanDownload             bool
	IsCertifiedUser         bool
	IsCertificationRequired bool
}

// UploadRequest asks Client.Upload to store one file's bytes in Synapse and
// attach them to the File entity Name under ParentID.
type UploadRequest struct {
	ParentID string // container that receives the File entity
	Name     string // entity name; it is validated with ValidateName
	Size     int64  // at least 1 byte: Synapse refuses empty files
	MD5      string // lowercase hex MD5 of all Size bytes

	// Source yields the bytes. ReadAt may be called concurrently from
	// several goroutines, once per part in flight.
	Source io.ReaderAt

	// FileName is the file handle's fileName, which is part of the
	// multipart request. Together with Size, MD5, PartSize and ContentType it
	// makes the request that Synapse keys resumable uploads on: sending the
	// same values again after a crash resumes the same upload. Empty means
	// Name.
	FileName string
	// PartSize is the multipart part size; 0 means PartSizeFor(Size).
	PartSize int64
	// ContentType is the MIME type; "" means a guess from FileName.
	ContentType string

	// EntityID, when set, names the File entity to update, and Etag (if
	// set) is the precondition for it: a mismatch fails with ErrStale.
	// When EntityID is empty, Upload looks Name up under ParentID and
	// updates the entity found, or creates a new one.
	EntityID string
	Etag     string

	// Absent says the caller knows that no entity called Name is in
	// ParentID (a fresh listing): Upload then skips its lookup before the
	// bytes move. It stays exactly-once: a create that clashes looks the
	// name up and updates what it finds.
	Absent bool

	// Parts, when not nil, is called after each part has been added, with
	// the part number (from 1) and the count of parts. It must not block.
	Parts func(part, of int)
}

// Client is what synfs needs from Synapse. The file system and the flusher
// use only this interface; remote/synapse implements it over the REST API and
// remote/emulator serves that API for tests.
//
// Every method takes a context; cancelling it abandons the call and returns
// an error for which errors.Is(err, context.Canceled) holds. Errors carry one
// of the kinds below (ErrNotFound, ErrExist, ...), tested with errors.Is.
// Transient failures (429, 5xx, dropped connections) are retried inside the
// client; what reaches the caller is final for that call.
type Client interface {
	// Me returns the caller. It fails with ErrUnauthenticated for a bad token.
	Me(ctx context.Context) (*User, error)

	// Get returns the current version of entity id, or ErrNotFound (also for
	// an entity in the trash).
	Get(ctx context.Context, id string) (*Entity, error)

	// Lookup returns the child called name of parentID, or ErrNotFound.
	// parentID "" looks up a Project by name.
	Lookup(ctx context.Context, parentID, name string) (*Entity, error)

	// Children lists every child of parentID of a kind synfs shows
	// (projects, folders, files, and others as KindOther), across all pages,
	// sorted by name. parentID "" lists the Projects the caller can read.
	// File entries come from the listing: their Size and MD5 are -1 and ""
	// unless the implementation can fill them cheaply.
	Children(ctx context.Context, parentID string) ([]Entity, error)

	// Permissions returns what the caller may do to entity id.
	Permissions(ctx context.Context, id string) (*Permissions, error)

	// CreateFolder creates Folder name under parentID. If the answer to the
	// create is lost, it looks the name up instead of creating twice; an
	// existing Folder of that name is returned with ErrExist.
	CreateFolder(ctx context.Context, parentID, name string) (*Entity, error)

	// Upload stores req's bytes by multipart upload and creates the File
	// entity, or a new version of the existing one when the content differs
	// (an identical MD5 on the existing entity makes no new version). It
	// never creates a second entity for the same name, even when retried
	// after a lost answer or a crash. It returns the entity as Synapse has it
	// afterwards, with Size and MD5 from the file handle.
	Upload(ctx context.Context, req *UploadRequest) (*Entity, error)

	// Move renames and/or moves entity id to name under newParentID
	// (newParentID "" keeps the parent). A clash at the target is ErrExist.
	Move(ctx context.Context, id, newParentID, name string) (*Entity, error)

	// Delete moves entity id to the trash. Deleting a missing or already
	// trashed entity succeeds.
	Delete(ctx context.Context, id string) error

	// Open returns length bytes (length < 0: to the end) of file entity e's
	// current data starting at offset off. The caller closes the reader.
	Open(ctx context.Context, e *Entity, off, length int64) (io.ReadCloser, error)

	// Download returns a random-access reader of file entity e's data. It
	// makes no call until the first read, which fetches a presigned URL
	// (one REST call, for e.FileHandleID when set); every read is then an
	// HTTP Range request on that URL, and a new URL is fetched when the one
	// held is about to expire or is refused. ctx bounds only this call.
	Download(ctx context.Context, e *Entity) (FileReader, error)

	// Annotations returns entity id's annotations (v2) as key → values.
	Annotations(ctx context.Context, id string) (*Annotations, error)

	// SetAnnotations replaces entity id's annotations. a.Etag is the entity
	// etag precondition (ErrStale on mismatch); the new etag is stored back
	// into a.
	SetAnnotations(ctx context.Context, id string, a *Annotations) error
}

// FileReader reads a file's bytes by offset. It is safe for concurrent use.
type FileReader interface {
	// ReadAt reads len(p) bytes from offset off, or fewer at the end of the
	// file, with io.ReaderAt's contract: n < len(p) comes with an error,
	// io.EOF at the end of the file.
	ReadAt(ctx context.Context, p []byte, off int64) (n int, err error)
}

// Annotations is an entity's annotations, v2 shape.
type Annotations struct {
	Etag   string
	Values map[string]AnnotationValue
}

// AnnotationValue is one annotation: a type and a non-empty list of values
// rendered as strings.
type AnnotationValue struct {
	Type   string // STRING, DOUBLE, LONG, TIMESTAMP_MS, BOOLEAN
	Values []string
}

// Part-size limits of Synapse's multipart upload.
const (
	MinPartSize     = 5 << 20 // 5 MiB
	MaxPartSize     = 5 << 30 // 5 GiB
	MaxParts        = 10000
	DefaultPartSize = 8 << 20 // what the official client uses
)

// PartSizeFor returns the part size synfs uses for a file of size bytes:
// DefaultPartSize, raised so that the file fits in MaxParts parts.
func PartSizeFor(size int64) int64 {
	ps := int64(DefaultPartSize)
	if need := (size + MaxParts - 1) / MaxParts; need > ps {
		ps = need
	}
	return ps
}

type backgroundKey struct{}

// Background marks ctx as carrying work nobody waits on (uploads): a
// client that paces its calls serves calls without the mark first.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// IsBackground reports whether ctx was marked by Background.
func IsBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// Outlive returns a context that ends grace after ctx does, rather than
// with it, for a call that changes something in Synapse: a request already
// sent may still be carried out after its sender gives up, so a caller
// that must know what happened waits for the answer, within grace.
func Outlive(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return lctx, func() { stop(); cancel() }
}

// Sleep waits for d or until ctx is done, and returns ctx's error if that
// came first (or at once when d <= 0 and ctx is done).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
