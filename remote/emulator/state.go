package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Well-known IDs of Synapse.
const (
	rootID  int64 = 4489    // parent of every Project
	trashID int64 = 1681355 // parent of trashed entities

	authenticatedPrincipal = "273948" // all registered users
	publicPrincipal        = "273949" // everyone, including anonymous
	anonymousPrincipal     = "273950" // the anonymous user
)

// Entity kinds and their concreteType names.
const (
	kindProject = "project"
	kindFolder  = "folder"
	kindFile    = "file"
	kindLink    = "link" // holds no children and no file; see docs/emulator.md

	typeProject = "org.sagebionetworks.repo.model.Project"
	typeFolder  = "org.sagebionetworks.repo.model.Folder"
	typeFile    = "org.sagebionetworks.repo.model.FileEntity"
	typeLink    = "org.sagebionetworks.repo.model.Link"
)

// Access types of an ACL entry.
const (
	accRead              = "READ"
	accDownload          = "DOWNLOAD"
	accCreate            = "CREATE"
	accUpdate            = "UPDATE"
	accDelete            = "DELETE"
	accChangePermissions = "CHANGE_PERMISSIONS"
	accChangeSettings    = "CHANGE_SETTINGS"
	accModerate          = "MODERATE"
)

var allAccess = []string{accRead, accDownload, accCreate, accUpdate, accDelete, accChangePermissions, accChangeSettings, accModerate}

func kindType(k string) string {
	switch k {
	case kindProject:
		return typeProject
	case kindFolder:
		return typeFolder
	case kindFile:
		return typeFile
	case kindLink:
		return typeLink
	}
	return ""
}

func typeKind(t string) string {
	switch t {
	case typeProject:
		return kindProject
	case typeFolder:
		return kindFolder
	case typeFile:
		return kindFile
	case typeLink:
		return kindLink
	}
	return ""
}

// user is a Synapse user. Tokens are kept as SHA-256 hashes only.
type user struct {
	ID        string    `json:"id"`
	UserName  string    `json:"userName"`
	Certified bool      `json:"certified"`
	Tokens    []string  `json:"tokens"`
	CreatedOn time.Time `json:"createdOn"`
	Etag      string    `json:"etag"`
}

// version is one version of a FileEntity.
type version struct {
	Number       int64     `json:"number"`
	Label        string    `json:"label"`
	Comment      *string   `json:"comment,omitempty"`
	FileHandleID string    `json:"fileHandleId"`
	ModifiedOn   time.Time `json:"modifiedOn"`
	ModifiedBy   string    `json:"modifiedBy"`
}

// annotation is one annotations2 value.
type annotation struct {
	Type   string   `json:"type"`
	Values []string `json:"value"`
}

// acl is an entity's own access control list.
type acl struct {
	Etag         string              `json:"etag"`
	CreationDate time.Time           `json:"creationDate"`
	Access       map[string][]string `json:"access"` // principal ID → access types
}

// trashRecord remembers where a trashed entity came from.
type trashRecord struct {
	OriginalParentID int64     `json:"originalParentId"`
	OriginalName     string    `json:"originalName"`
	DeletedBy        string    `json:"deletedBy"`
	DeletedOn        time.Time `json:"deletedOn"`
	Priority         bool      `json:"priority,omitempty"`
}

// entity is a Project, Folder or FileEntity.
type entity struct {
	ID          int64                 `json:"id"`
	Kind        string                `json:"kind"`
	Name        string                `json:"name"`
	Description *string               `json:"description,omitempty"`
	Alias       *string               `json:"alias,omitempty"`
	ParentID    int64                 `json:"parentId"`
	Etag        string                `json:"etag"`
	CreatedOn   time.Time             `json:"createdOn"`
	ModifiedOn  time.Time             `json:"modifiedOn"`
	CreatedBy   string                `json:"createdBy"`
	ModifiedBy  string                `json:"modifiedBy"`
	Revision    int64                 `json:"revision"`
	ACL         *acl                  `json:"acl,omitempty"`
	Versions    []*version            `json:"versions,omitempty"` // files only, ascending
	Annotations map[string]annotation `json:"annotations,omitempty"`
	Trash       *trashRecord          `json:"trash,omitempty"`   // set on the top of a trashed subtree
	LinksTo     json.RawMessage       `json:"linksTo,omitempty"` // links only: the Reference, as sent
}

// isContainer reports whether entities of kind k can have children.
func isContainer(k string) bool { return k == kindProject || k == kindFolder }

func (e *entity) latest() *version {
	if len(e.Versions) == 0 {
		return nil
	}
	return e.Versions[len(e.Versions)-1]
}

func (e *entity) version(n int64) *version {
	for _, v := range e.Versions {
		if v.Number == n {
			return v
		}
	}
	return nil
}

// blobRef names one stored object (an uploaded part).
type blobRef struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
}

// fileHandle is an S3FileHandle; its bytes are the concatenation of Parts.
type fileHandle struct {
	ID          string    `json:"id"`
	Etag        string    `json:"etag"`
	CreatedBy   string    `json:"createdBy"`
	CreatedOn   time.Time `json:"createdOn"`
	ContentType string    `json:"contentType"`
	ContentMD5  string    `json:"contentMd5"`
	FileName    string    `json:"fileName"`
	ContentSize int64     `json:"contentSize"`
	Key         string    `json:"key"`
	PreviewID   string    `json:"previewId,omitempty"`
	Parts       []blobRef `json:"parts"`
}

// upload is a multipart upload.
type upload struct {
	ID                string          `json:"id"`
	StartedBy         string          `json:"startedBy"`
	StartedOn         time.Time       `json:"startedOn"`
	UpdatedOn         time.Time       `json:"updatedOn"`
	Key               string          `json:"key"` // startedBy + "/" + request hash
	FileName          string          `json:"fileName"`
	ContentType       string          `json:"contentType"`
	ContentMD5        string          `json:"contentMd5"`
	FileSize          int64           `json:"fileSize"`
	PartSize          int64           `json:"partSize"`
	NumParts          int             `json:"numParts"`
	GeneratePreview   bool            `json:"generatePreview"`
	Staged            map[int]blobRef `json:"staged"`
	Added             map[int]blobRef `json:"added"`
	State             string          `json:"state"`
	ResultHandleID    string          `json:"resultHandleId,omitempty"`
	SignedContentType string          `json:"signedContentType,omitempty"`
}

func (u *upload) partsState() string {
	var b strings.Builder
	b.Grow(u.NumParts)
	for i := 1; i <= u.NumParts; i++ {
		if _, ok := u.Added[i]; ok {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// state is everything the emulator persists.
type state struct {
	NextEntity    int64                  `json:"nextEntity"`
	NextHandle    int64                  `json:"nextHandle"`
	NextUpload    int64                  `json:"nextUpload"`
	NextPrincipal int64                  `json:"nextPrincipal"`
	NextBlob      int64                  `json:"nextBlob"`
	Secret        string                 `json:"secret"`
	Users         map[string]*user       `json:"users"`
	Entities      map[int64]*entity      `json:"entities"`
	Handles       map[string]*fileHandle `json:"handles"`
	Uploads       map[string]*upload     `json:"uploads"`
	UploadKeys    map[string]string      `json:"uploadKeys"` // upload key → upload ID
}

func newState() *state {
	return &state{
		NextEntity:    100000,
		NextHandle:    500000,
		NextUpload:    7000,
		NextPrincipal: 3350000,
		NextBlob:      1,
		Secret:        randomHex(32),
		Users:         map[string]*user{},
		Entities:      map[int64]*entity{},
		Handles:       map[string]*fileHandle{},
		Uploads:       map[string]*upload{},
		UploadKeys:    map[string]string{},
	}
}

const stateFile = "state.json"

// loadState reads dir's snapshot, or returns a fresh state when there is none.
func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if os.IsNotExist(err) {
		return newState(), nil
	}
	if err != nil {
		return nil, err
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("emulator: reading %s: %w", stateFile, err)
	}
	return st, nil
}

// writeState atomically replaces dir's snapshot with data.
func writeState(dir string, data []byte) error {
	tmp, err := os.CreateTemp(dir, stateFile+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func synID(id int64) string { return "syn" + strconv.FormatInt(id, 10) }

// parseSynID accepts "syn123" (any case) or "123".
func parseSynID(s string) (int64, bool) {
	if len(s) > 3 && strings.EqualFold(s[:3], "syn") {
		s = s[3:]
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// javaLen is the length of s as Java's String.length counts it.
func javaLen(s string) int { return len(utf16.Encode([]rune(s))) }

const isoMillis = "2006-01-02T15:04:05.000Z"

func iso(t time.Time) string { return t.UTC().Format(isoMillis) }

func sortedAccess(a []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range a {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}
