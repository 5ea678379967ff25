package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMultipartValidation(t *testing.T) {
	e := newEnv(t, Options{})
	sum := md5hex([]byte("x"))
	want(t, e.startUpload(e.alice, "empty.txt", 0, 5<<20, md5hex(nil), ""), http.StatusBadRequest, "File size must be at least one byte")
	want(t, e.startUpload(e.alice, "a.txt", 10, 5<<20-1, sum, ""), http.StatusBadRequest, "The part size must be at least 5242880 bytes.")
	want(t, e.startUpload(e.alice, "a.txt", 10, 5<<30+1, sum, ""), http.StatusBadRequest, "The part size must not exceed 5368709120 bytes.")
	want(t, e.startUpload(e.alice, "a.txt", 10001*(5<<20), 5<<20, sum, ""), http.StatusBadRequest,
		"File Upload would require 10001 parts, which exceeds the maximum number of allowed parts of: 10000. Please choose a larger part size.")
	want(t, e.startUpload(e.alice, "a.txt", 10, 5<<20, "", ""), http.StatusBadRequest,
		"MultipartUploadRequest.contentMD5Hex is required and must not be the empty string.")
	want(t, e.startUpload("", "a.txt", 10, 5<<20, sum, ""), http.StatusForbidden, "Anonymous cannot upload files.")
	// Uncertified users may upload.
	want(t, e.startUpload(e.carol, "a.txt", 10, 5<<20, sum, ""), http.StatusCreated, "")
}

func TestMultipartParts(t *testing.T) {
	e := newEnv(t, Options{})
	data := []byte("hello, multipart")
	r := e.startUpload(e.alice, "h.txt", int64(len(data)), 5<<20, md5hex(data), "")
	want(t, r, http.StatusCreated, "")
	st := r.json(t)
	id := st["uploadId"].(string)
	if st["state"] != "UPLOADING" || st["partsState"] != "0" || st["startedBy"] != e.aliceID {
		t.Errorf("status: got %v", st)
	}
	want(t, e.do(e.bob, "POST", "/file/v1/file/multipart/"+id+"/presigned/url/batch", map[string]any{"uploadId": id, "partNumbers": []int{1}}),
		http.StatusForbidden, "Only the user that started a multipart upload can get part upload pre-signed URLs for that file upload.")
	want(t, e.do(e.alice, "POST", "/file/v1/file/multipart/"+id+"/presigned/url/batch", map[string]any{"uploadId": id, "partNumbers": []int{2}}),
		http.StatusBadRequest, "Part number cannot be larger than number of parts. Number of parts: 1, provided part number: 2")
	want(t, e.do(e.alice, "POST", "/file/v1/file/multipart/"+id+"/presigned/url/batch", map[string]any{"uploadId": id, "partNumbers": []int{}}),
		http.StatusBadRequest, "")

	if got := e.addPart(e.alice, id, 1, md5hex(data)); got["addPartState"] != "ADD_FAILED" || !strings.Contains(got["errorMessage"].(string), "part never uploaded") {
		t.Errorf("add before upload: got %v", got)
	}
	want(t, e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil), http.StatusBadRequest,
		"Missing 1 part(s).  All parts must be successfully added before a file upload can be completed.")

	u := e.presignedURLs(e.alice, id, 1)[1]
	if !strings.HasPrefix(u, e.ts.URL+"/s3/upload/"+id+"/1?") || !strings.Contains(u, "X-Amz-Expires=900") || !strings.Contains(u, "X-Amz-Date=20240101T000000Z") {
		t.Errorf("presigned URL: got %s", u)
	}
	r = e.putPart(u, data)
	want(t, r, http.StatusOK, "")
	if got := r.header.Get("ETag"); got != `"`+md5hex(data)+`"` {
		t.Errorf("ETag: got %s, want the part MD5", got)
	}
	got := e.addPart(e.alice, id, 1, md5hex([]byte("other")))
	if got["addPartState"] != "ADD_FAILED" || got["errorMessage"] != "The provided MD5 does not match the MD5 of the uploaded part.  Please re-upload the part." {
		t.Errorf("wrong MD5: got %v", got)
	}
	if got := e.addPart(e.alice, id, 1, strings.ToUpper(md5hex(data))); got["addPartState"] != "ADD_SUCCESS" {
		t.Errorf("add: got %v", got)
	}
	r = e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil)
	want(t, r, http.StatusCreated, "")
	st = r.json(t)
	fh, _ := st["resultFileHandleId"].(string)
	if st["state"] != "COMPLETED" || st["partsState"] != "1" || fh == "" {
		t.Fatalf("complete: got %v", st)
	}
	// Completing again answers the same; adding is refused.
	if again := e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil).json(t); again["resultFileHandleId"] != fh {
		t.Errorf("re-complete: got %v, want handle %s", again, fh)
	}
	want(t, e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/add/1?partMD5Hex="+md5hex(data), nil), http.StatusBadRequest,
		"Cannot add parts to completed file upload.")

	h := e.do(e.alice, "GET", "/file/v1/fileHandle/"+fh, nil)
	want(t, h, http.StatusOK, "")
	hm := h.json(t)
	if hm["contentMd5"] != md5hex(data) || hm["contentSize"] != float64(len(data)) || hm["fileName"] != "h.txt" || hm["concreteType"] != s3HandleType {
		t.Errorf("file handle: got %v", hm)
	}
	want(t, e.do(e.bob, "GET", "/file/v1/fileHandle/"+fh, nil), http.StatusForbidden, "")
	if b, err := e.s.FileBytes(fh); err != nil || !bytes.Equal(b, data) {
		t.Errorf("FileBytes: got %q, %v", b, err)
	}
	s := e.s.Stats()
	if s.UploadsStarted != 1 || s.UploadsCompleted != 1 || s.PartsPut != 1 || s.PartsAdded != 1 || s.AddPartsFailed != 2 {
		t.Errorf("stats: got %+v", s)
	}
}

func TestMultipartWholeFileChecks(t *testing.T) {
	e := newEnv(t, Options{})
	// The request's MD5 is wrong: the emulator refuses to complete.
	data := []byte("actual bytes")
	r := e.startUpload(e.alice, "m.txt", int64(len(data)), 5<<20, md5hex([]byte("claimed")), "")
	id := r.json(t)["uploadId"].(string)
	want(t, e.putPart(e.presignedURLs(e.alice, id, 1)[1], data), http.StatusOK, "")
	e.addPart(e.alice, id, 1, md5hex(data))
	r = e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil)
	want(t, r, http.StatusBadRequest, "")
	if !strings.Contains(r.reason(t), "does not match") {
		t.Errorf("MD5 mismatch reason: got %q", r.reason(t))
	}
	// A non-last part under 5 MiB fails at completion, as S3 does.
	big := bytes.Repeat([]byte("z"), 6<<20)
	r = e.startUpload(e.alice, "s.txt", int64(len(big)), 5<<20, md5hex(big), "")
	id = r.json(t)["uploadId"].(string)
	urls := e.presignedURLs(e.alice, id, 1, 2)
	want(t, e.putPart(urls[1], big[:1<<20]), http.StatusOK, "")
	want(t, e.putPart(urls[2], big[1<<20:]), http.StatusOK, "")
	e.addPart(e.alice, id, 1, md5hex(big[:1<<20]))
	e.addPart(e.alice, id, 2, md5hex(big[1<<20:]))
	r = e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil)
	want(t, r, http.StatusBadRequest, "")
	if !strings.HasPrefix(r.reason(t), "Your proposed upload is smaller than the minimum allowed size") {
		t.Errorf("small part reason: got %q", r.reason(t))
	}
}

func TestMultipartResume(t *testing.T) {
	e := newEnv(t, Options{})
	data := bytes.Repeat([]byte("r"), 6<<20)
	sum := md5hex(data)
	first := e.startUpload(e.alice, "r.bin", int64(len(data)), 5<<20, sum, "?forceRestart=false").json(t)
	id := first["uploadId"].(string)
	urls := e.presignedURLs(e.alice, id, 1, 2)
	want(t, e.putPart(urls[2], data[5<<20:]), http.StatusOK, "")
	e.addPart(e.alice, id, 2, md5hex(data[5<<20:]))

	// Field order does not matter; the same fields resume.
	raw := fmt.Sprintf(`{"partSizeBytes":5242880,"fileSizeBytes":%d,"contentMD5Hex":"%s","fileName":"r.bin","generatePreview":true,"storageLocationId":1,"contentType":"application/octet-stream"}`, len(data), sum)
	again := e.do(e.alice, "POST", "/file/v1/file/multipart", []byte(raw)).json(t)
	if again["uploadId"] != id || again["partsState"] != "01" {
		t.Errorf("resume: got %v, want upload %s with partsState 01", again, id)
	}
	if other := e.startUpload(e.alice, "r2.bin", int64(len(data)), 5<<20, sum, "").json(t); other["uploadId"] == id {
		t.Errorf("a different fileName resumed upload %s", id)
	}
	if other := e.startUpload(e.bob, "r.bin", int64(len(data)), 5<<20, sum, "").json(t); other["uploadId"] == id {
		t.Errorf("another user resumed upload %s", id)
	}
	want(t, e.putPart(urls[1], data[:5<<20]), http.StatusOK, "")
	e.addPart(e.alice, id, 1, md5hex(data[:5<<20]))
	done := e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil).json(t)
	reuse := e.startUpload(e.alice, "r.bin", int64(len(data)), 5<<20, sum, "").json(t)
	if reuse["uploadId"] != id || reuse["state"] != "COMPLETED" || reuse["resultFileHandleId"] != done["resultFileHandleId"] {
		t.Errorf("completed reuse: got %v, want %v", reuse, done)
	}
	fresh := e.startUpload(e.alice, "r.bin", int64(len(data)), 5<<20, sum, "?forceRestart=true").json(t)
	if fresh["uploadId"] == id || fresh["state"] != "UPLOADING" || fresh["partsState"] != "00" {
		t.Errorf("forceRestart: got %v", fresh)
	}
	if got := e.s.Stats().UploadsStarted; got != 4 {
		t.Errorf("UploadsStarted: got %d, want 4", got)
	}
}

func TestPresignedURLs(t *testing.T) {
	e := newEnv(t, Options{})
	data := []byte("expiring")
	id := e.startUpload(e.alice, "e.txt", int64(len(data)), 5<<20, md5hex(data), "").json(t)["uploadId"].(string)
	u := e.presignedURLs(e.alice, id, 1)[1]

	tampered := strings.Replace(u, "/s3/upload/"+id+"/1", "/s3/upload/"+id+"/2", 1)
	want(t, e.putPart(tampered, data), http.StatusForbidden, "")
	pu, _ := url.Parse(u)
	q := pu.Query()
	q.Set("X-Amz-Expires", "99999")
	pu.RawQuery = q.Encode()
	r := e.putPart(pu.String(), data)
	want(t, r, http.StatusForbidden, "")
	if !strings.Contains(string(r.body), "SignatureDoesNotMatch") {
		t.Errorf("tampered body: got %s", r.body)
	}
	// Content-Length is required.
	req, _ := http.NewRequest("PUT", u, io.NopCloser(bytes.NewReader(data)))
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusLengthRequired {
		t.Errorf("chunked PUT: got %d, want 411", res.StatusCode)
	}

	e.clock.Advance(15*time.Minute + time.Second)
	r = e.putPart(u, data)
	want(t, r, http.StatusForbidden, "")
	if !strings.Contains(string(r.body), "Request has expired") {
		t.Errorf("expired body: got %s", r.body)
	}
	// A fresh URL works.
	want(t, e.putPart(e.presignedURLs(e.alice, id, 1)[1], data), http.StatusOK, "")

	// Signed content type must be sent.
	r = e.do(e.alice, "POST", "/file/v1/file/multipart/"+id+"/presigned/url/batch", map[string]any{"uploadId": id, "partNumbers": []int{1}, "contentType": "text/plain"})
	var out struct {
		PartPresignedUrls []struct {
			URL     string            `json:"uploadPresignedUrl"`
			Headers map[string]string `json:"signedHeaders"`
		} `json:"partPresignedUrls"`
	}
	json.Unmarshal(r.body, &out)
	signed := out.PartPresignedUrls[0]
	if signed.Headers["Content-Type"] != "text/plain" {
		t.Errorf("signedHeaders: got %v", signed.Headers)
	}
	want(t, e.putPart(signed.URL, data), http.StatusForbidden, "")
	req, _ = http.NewRequest("PUT", signed.URL, bytes.NewReader(data))
	req.Header.Set("Content-Type", "text/plain")
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("PUT with the signed content type: got %d, want 200", res.StatusCode)
	}
}

func TestDownload(t *testing.T) {
	e := newEnv(t, Options{})
	data := []byte("0123456789abcdefghij")
	f := e.createFile(e.alice, e.folder, "d.txt", data)
	id, fh := f["id"].(string), f["dataFileHandleId"].(string)

	r := e.do(e.alice, "POST", "/file/v1/fileHandle/batch", map[string]any{"includeFileHandles": true, "includePreSignedURLs": true,
		"requestedFiles": []map[string]any{
			{"fileHandleId": fh, "associateObjectId": id, "associateObjectType": "FileEntity"},
			{"fileHandleId": json.Number(fh), "associateObjectId": id, "associateObjectType": "FileEntity"},
			{"fileHandleId": "999999999", "associateObjectId": id, "associateObjectType": "FileEntity"},
		}})
	want(t, r, http.StatusCreated, "")
	items := r.json(t)["requestedFiles"].([]any)
	first := items[0].(map[string]any)
	u, _ := first["preSignedURL"].(string)
	if u == "" || first["fileHandle"].(map[string]any)["contentMd5"] != md5hex(data) || items[1].(map[string]any)["preSignedURL"] == nil {
		t.Fatalf("batch items: got %v", items)
	}
	if items[2].(map[string]any)["failureCode"] != "NOT_FOUND" {
		t.Errorf("missing handle: got %v, want failureCode NOT_FOUND", items[2])
	}
	if !strings.Contains(u, "X-Amz-Expires=30") || !strings.Contains(u, "response-content-disposition=") {
		t.Errorf("download URL: got %s", u)
	}
	rb := e.do(e.bob, "POST", "/file/v1/fileHandle/batch", map[string]any{"includePreSignedURLs": true,
		"requestedFiles": []map[string]any{{"fileHandleId": fh, "associateObjectId": id, "associateObjectType": "FileEntity"}}})
	if got := rb.json(t)["requestedFiles"].([]any)[0].(map[string]any); got["failureCode"] != "UNAUTHORIZED" || got["preSignedURL"] != nil {
		t.Errorf("bob's batch: got %v, want UNAUTHORIZED", got)
	}
	var many []map[string]any
	for i := 0; i < 101; i++ {
		many = append(many, map[string]any{"fileHandleId": fh})
	}
	want(t, e.do(e.alice, "POST", "/file/v1/fileHandle/batch", map[string]any{"requestedFiles": many}), http.StatusBadRequest,
		"Request exceeds the maximum number of objects per request: 100")

	full := e.do("", "GET", u, nil)
	want(t, full, http.StatusOK, "")
	if !bytes.Equal(full.body, data) || full.header.Get("Content-Disposition") == "" {
		t.Errorf("full GET: got %q, disposition %q", full.body, full.header.Get("Content-Disposition"))
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Range", "bytes=5-9")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(b) != "56789" || res.Header.Get("Content-Range") != "bytes 5-9/20" {
		t.Errorf("range GET: got %d %q %q", res.StatusCode, b, res.Header.Get("Content-Range"))
	}
	req.Header.Set("Range", "bytes=100-")
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("out-of-range GET: got %d, want 416", res.StatusCode)
	}

	r = e.do(e.alice, "GET", "/repo/v1/entity/"+id+"/file", nil)
	want(t, r, http.StatusTemporaryRedirect, "")
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, e.ts.URL+"/s3/blob/"+fh+"?") {
		t.Errorf("Location: got %s", loc)
	}
	r = e.do(e.alice, "GET", "/file/v1/file/"+fh+"?fileAssociateType=FileEntity&fileAssociateId="+id+"&redirect=false", nil)
	want(t, r, http.StatusOK, "")
	if !bytes.Equal(e.do("", "GET", string(r.body), nil).body, data) {
		t.Errorf("redirect=false URL does not serve the file")
	}
	want(t, e.do(e.bob, "GET", "/file/v1/file/"+fh+"?fileAssociateType=FileEntity&fileAssociateId="+id, nil), http.StatusForbidden, "")

	e.clock.Advance(31 * time.Second)
	want(t, e.do("", "GET", u, nil), http.StatusForbidden, "")
}

func TestUploadDestination(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do(e.alice, "GET", "/file/v1/entity/"+e.folder+"/uploadDestination", nil)
	want(t, r, http.StatusOK, "")
	m := r.json(t)
	if m["concreteType"] != "org.sagebionetworks.repo.model.file.S3UploadDestination" || m["storageLocationId"] != 1.0 || m["uploadType"] != "S3" {
		t.Errorf("upload destination: got %v", m)
	}
}
