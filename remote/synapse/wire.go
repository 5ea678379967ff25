package synapse

import (
	"encoding/json"
	"maps"
)

// Synapse concreteType values synfs uses.
const (
	TypeProject         = "org.sagebionetworks.repo.model.Project"
	TypeFolder          = "org.sagebionetworks.repo.model.Folder"
	TypeFileEntity      = "org.sagebionetworks.repo.model.FileEntity"
	TypeMultipartUpload = "org.sagebionetworks.repo.model.file.MultipartUploadRequest"
)

// ErrorResponse is Synapse's error body. Clients read only Reason.
type ErrorResponse struct {
	ConcreteType     string `json:"concreteType,omitempty"`
	Reason           string `json:"reason,omitempty"`
	ErrorCode        string `json:"errorCode,omitempty"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// UserProfile is the caller's profile (GET /userProfile).
type UserProfile struct {
	OwnerID              string   `json:"ownerId"`
	UserName             string   `json:"userName,omitempty"`
	Emails               []string `json:"emails,omitempty"`
	FirstName            string   `json:"firstName,omitempty"`
	LastName             string   `json:"lastName,omitempty"`
	Etag                 string   `json:"etag,omitempty"`
	CreatedOn            string   `json:"createdOn,omitempty"`
	TwoFactorAuthEnabled bool     `json:"twoFactorAuthEnabled,omitempty"`
}

// PassingRecord is a Certified User quiz result
// (GET /user/{id}/certifiedUserPassingRecord).
type PassingRecord struct {
	UserID     string `json:"userId,omitempty"`
	QuizID     int64  `json:"quizId,omitempty"`
	ResponseID int64  `json:"responseId,omitempty"`
	Score      int64  `json:"score,omitempty"`
	Passed     bool   `json:"passed"`
	PassedOn   string `json:"passedOn,omitempty"`
	Revoked    bool   `json:"revoked"`
	RevokedOn  string `json:"revokedOn,omitempty"`
	Certified  bool   `json:"certified"`
}

// Entity is a Synapse entity as sent on the wire. The typed fields cover
// Projects, Folders and FileEntities; every field the server sent is also
// kept in Extra, so that a GET, modify, PUT round trip sends back fields this
// type does not know. On encoding, non-zero typed fields override Extra.
type Entity struct {
	ConcreteType     string `json:"concreteType,omitempty"`
	ID               string `json:"id,omitempty"`
	Name             string `json:"name,omitempty"`
	Description      string `json:"description,omitempty"`
	ParentID         string `json:"parentId,omitempty"`
	Etag             string `json:"etag,omitempty"`
	CreatedOn        string `json:"createdOn,omitempty"`
	ModifiedOn       string `json:"modifiedOn,omitempty"`
	CreatedBy        string `json:"createdBy,omitempty"`
	ModifiedBy       string `json:"modifiedBy,omitempty"`
	VersionNumber    int64  `json:"versionNumber,omitempty"`
	VersionLabel     string `json:"versionLabel,omitempty"`
	VersionComment   string `json:"versionComment,omitempty"`
	IsLatestVersion  bool   `json:"isLatestVersion,omitempty"`
	DataFileHandleID string `json:"dataFileHandleId,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

type plainEntity Entity

// UnmarshalJSON decodes an entity and keeps every field in Extra.
func (e *Entity) UnmarshalJSON(b []byte) error {
	var p plainEntity
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Entity(p)
	e.Extra = raw
	return nil
}

// MarshalJSON encodes Extra overlaid with the non-zero typed fields.
func (e Entity) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(plainEntity(e))
	if err != nil || len(e.Extra) == 0 {
		return b, err
	}
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(b, &typed); err != nil {
		return nil, err
	}
	m := maps.Clone(e.Extra)
	maps.Copy(m, typed)
	return json.Marshal(m)
}

// EntityHeader is one entry of a children listing.
type EntityHeader struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Type            string `json:"type"` // the full concreteType class name
	VersionNumber   int64  `json:"versionNumber,omitempty"`
	VersionLabel    string `json:"versionLabel,omitempty"`
	IsLatestVersion bool   `json:"isLatestVersion,omitempty"`
	BenefactorID    int64  `json:"benefactorId,omitempty"`
	CreatedOn       string `json:"createdOn,omitempty"`
	CreatedBy       string `json:"createdBy,omitempty"`
	ModifiedOn      string `json:"modifiedOn,omitempty"`
	ModifiedBy      string `json:"modifiedBy,omitempty"`
}

// EntityChildrenRequest is the body of POST /entity/children. A nil
// ParentID lists Projects.
type EntityChildrenRequest struct {
	ParentID               *string  `json:"parentId"`
	IncludeTypes           []string `json:"includeTypes"`
	SortBy                 string   `json:"sortBy,omitempty"`
	SortDirection          string   `json:"sortDirection,omitempty"`
	NextPageToken          *string  `json:"nextPageToken"`
	IncludeTotalChildCount bool     `json:"includeTotalChildCount,omitempty"`
	IncludeSumFileSizes    bool     `json:"includeSumFileSizes,omitempty"`
}

// EntityChildrenResponse is one page of POST /entity/children.
type EntityChildrenResponse struct {
	Page              []EntityHeader `json:"page"`
	NextPageToken     string         `json:"nextPageToken,omitempty"`
	TotalChildCount   int64          `json:"totalChildCount,omitempty"`
	SumFileSizesBytes int64          `json:"sumFileSizesBytes,omitempty"`
}

// EntityLookupRequest is the body of POST /entity/child. A nil ParentID
// looks up a Project.
type EntityLookupRequest struct {
	ParentID   *string `json:"parentId"`
	EntityName string  `json:"entityName"`
}

// EntityID is the answer of POST /entity/child.
type EntityID struct {
	ID string `json:"id"`
}

// ProjectHeader is one entry of GET /projects.
type ProjectHeader struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	LastActivity string `json:"lastActivity,omitempty"`
	ModifiedOn   string `json:"modifiedOn,omitempty"`
	ModifiedBy   string `json:"modifiedBy,omitempty"`
}

// ProjectHeaderList is one page of GET /projects.
type ProjectHeaderList struct {
	Results       []ProjectHeader `json:"results"`
	NextPageToken string          `json:"nextPageToken,omitempty"`
}

// UserEntityPermissions is the caller's access to one entity.
type UserEntityPermissions struct {
	CanView                  bool  `json:"canView"`
	CanEdit                  bool  `json:"canEdit"`
	CanAddChild              bool  `json:"canAddChild"`
	CanCertifiedUserEdit     bool  `json:"canCertifiedUserEdit"`
	CanCertifiedUserAddChild bool  `json:"canCertifiedUserAddChild"`
	IsCertifiedUser          bool  `json:"isCertifiedUser"`
	CanChangePermissions     bool  `json:"canChangePermissions"`
	CanChangeSettings        bool  `json:"canChangeSettings"`
	CanDelete                bool  `json:"canDelete"`
	CanDownload              bool  `json:"canDownload"`
	CanUpload                bool  `json:"canUpload"`
	CanEnableInheritance     bool  `json:"canEnableInheritance"`
	CanPublicRead            bool  `json:"canPublicRead"`
	CanModerate              bool  `json:"canModerate"`
	IsCertificationRequired  bool  `json:"isCertificationRequired"`
	OwnerPrincipalID         int64 `json:"ownerPrincipalId,omitempty"`
}

// Annotations is the annotations2 body of an entity.
type Annotations struct {
	ID          string                      `json:"id"`
	Etag        string                      `json:"etag"`
	Annotations map[string]AnnotationsValue `json:"annotations"`
}

// AnnotationsValue is one typed annotation.
type AnnotationsValue struct {
	Type  string   `json:"type"`
	Value []string `json:"value"`
}

// UploadDestination is a container's default upload destination.
type UploadDestination struct {
	ConcreteType      string `json:"concreteType,omitempty"`
	StorageLocationID int64  `json:"storageLocationId,omitempty"`
	UploadType        string `json:"uploadType,omitempty"`
	StsEnabled        bool   `json:"stsEnabled,omitempty"`
	Banner            string `json:"banner,omitempty"`
	BaseKey           string `json:"baseKey,omitempty"`
}

// MultipartUploadRequest starts or resumes a multipart upload. Synapse keys
// resumption on the whole request, so every field must be the same when
// resuming.
type MultipartUploadRequest struct {
	ConcreteType      string `json:"concreteType,omitempty"`
	FileName          string `json:"fileName"`
	FileSizeBytes     int64  `json:"fileSizeBytes"`
	PartSizeBytes     int64  `json:"partSizeBytes"`
	ContentMD5Hex     string `json:"contentMD5Hex"`
	ContentType       string `json:"contentType,omitempty"`
	StorageLocationID *int64 `json:"storageLocationId,omitempty"`
	GeneratePreview   bool   `json:"generatePreview"`
}

// Multipart upload states.
const (
	StateUploading = "UPLOADING"
	StateCompleted = "COMPLETED"
)

// MultipartUploadStatus is the state of a multipart upload.
type MultipartUploadStatus struct {
	UploadID           string `json:"uploadId"`
	StartedBy          string `json:"startedBy,omitempty"`
	StartedOn          string `json:"startedOn,omitempty"`
	UpdatedOn          string `json:"updatedOn,omitempty"`
	PartsState         string `json:"partsState"`
	State              string `json:"state"`
	ResultFileHandleID string `json:"resultFileHandleId,omitempty"`
}

// BatchPresignedUploadURLRequest asks for part upload URLs.
type BatchPresignedUploadURLRequest struct {
	UploadID    string  `json:"uploadId"`
	PartNumbers []int64 `json:"partNumbers"`
	ContentType string  `json:"contentType,omitempty"`
}

// BatchPresignedUploadURLResponse holds part upload URLs.
type BatchPresignedUploadURLResponse struct {
	PartPresignedURLs []PartPresignedURL `json:"partPresignedUrls"`
}

// PartPresignedURL is the URL for one part, and the headers it was signed
// with, which the PUT must carry.
type PartPresignedURL struct {
	PartNumber         int64             `json:"partNumber"`
	UploadPresignedURL string            `json:"uploadPresignedUrl"`
	SignedHeaders      map[string]string `json:"signedHeaders,omitempty"`
}

// Add-part outcomes.
const (
	AddSuccess = "ADD_SUCCESS"
	AddFailed  = "ADD_FAILED"
)

// AddPartResponse is the answer to adding one part.
type AddPartResponse struct {
	UploadID     string `json:"uploadId"`
	PartNumber   int64  `json:"partNumber"`
	AddPartState string `json:"addPartState"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// FileHandle is a Synapse file handle (S3FileHandle and relatives).
type FileHandle struct {
	ConcreteType      string `json:"concreteType,omitempty"`
	ID                string `json:"id"`
	Etag              string `json:"etag,omitempty"`
	CreatedBy         string `json:"createdBy,omitempty"`
	CreatedOn         string `json:"createdOn,omitempty"`
	ModifiedOn        string `json:"modifiedOn,omitempty"`
	ContentType       string `json:"contentType,omitempty"`
	ContentMD5        string `json:"contentMd5,omitempty"`
	FileName          string `json:"fileName,omitempty"`
	StorageLocationID int64  `json:"storageLocationId,omitempty"`
	ContentSize       int64  `json:"contentSize"`
	Status            string `json:"status,omitempty"`
	BucketName        string `json:"bucketName,omitempty"`
	Key               string `json:"key,omitempty"`
	PreviewID         string `json:"previewId,omitempty"`
	IsPreview         bool   `json:"isPreview,omitempty"`
}

// FileHandleAssociation names a file handle and the object that grants
// access to it.
type FileHandleAssociation struct {
	FileHandleID        string `json:"fileHandleId"`
	AssociateObjectID   string `json:"associateObjectId"`
	AssociateObjectType string `json:"associateObjectType"`
}

// BatchFileRequest asks for file handles and presigned download URLs.
type BatchFileRequest struct {
	RequestedFiles              []FileHandleAssociation `json:"requestedFiles"`
	IncludePreSignedURLs        bool                    `json:"includePreSignedURLs"`
	IncludeFileHandles          bool                    `json:"includeFileHandles"`
	IncludePreviewPreSignedURLs bool                    `json:"includePreviewPreSignedURLs"`
}

// BatchFileResult answers a BatchFileRequest, one entry per requested file.
type BatchFileResult struct {
	RequestedFiles []FileResult `json:"requestedFiles"`
}

// FileResult is one file of a BatchFileResult. FailureCode is NOT_FOUND or
// UNAUTHORIZED when the file could not be served.
type FileResult struct {
	FileHandleID        string      `json:"fileHandleId"`
	FileHandle          *FileHandle `json:"fileHandle,omitempty"`
	PreSignedURL        string      `json:"preSignedURL,omitempty"`
	PreviewPreSignedURL string      `json:"previewPreSignedURL,omitempty"`
	FailureCode         string      `json:"failureCode,omitempty"`
}
