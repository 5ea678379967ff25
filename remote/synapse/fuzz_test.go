package synapse

import (
	"encoding/json"
	"testing"
)

func FuzzDecodeEntity(f *testing.F) {
	f.Add([]byte(`{"concreteType":"org.sagebionetworks.repo.model.FileEntity","id":"syn1","name":"a","parentId":"syn2","etag":"e","versionNumber":3,"dataFileHandleId":"9","createdOn":"2024-01-01T00:00:00.000Z","extra":{"x":[1,2]}}`))
	f.Add([]byte(`{"concreteType":"org.sagebionetworks.repo.model.Project","id":"syn1","parentId":"syn4489"}`))
	f.Add([]byte(`{"versionNumber":"x"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entity
		if json.Unmarshal(b, &e) != nil {
			return
		}
		r := toEntity(&e)
		if r.Kind == 1 && r.ParentID != "" {
			t.Errorf("project parent: got %q, want \"\"", r.ParentID)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-encoding a decoded entity: %v", err)
		}
		var back Entity
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("decoding a re-encoded entity: %v", err)
		}
		if back.ID != e.ID || back.Name != e.Name || back.DataFileHandleID != e.DataFileHandleID || back.Etag != e.Etag {
			t.Errorf("round trip: got %+v, want %+v", back, e)
		}
	})
}

func FuzzDecodeChildrenPage(f *testing.F) {
	f.Add([]byte(`{"page":[{"id":"syn1","name":"a","type":"org.sagebionetworks.repo.model.Folder","versionNumber":1}],"nextPageToken":"50a50"}`))
	f.Add([]byte(`{"page":null}`))
	f.Add([]byte(`{"page":[{"type":7}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p EntityChildrenResponse
		if json.Unmarshal(b, &p) != nil {
			return
		}
		for i := range p.Page {
			e := fromHeader(&p.Page[i], "syn9")
			if e.ID != p.Page[i].ID {
				t.Errorf("header id: got %q, want %q", e.ID, p.Page[i].ID)
			}
		}
	})
}

func FuzzDecodeMultipartStatus(f *testing.F) {
	f.Add([]byte(`{"uploadId":"7","partsState":"1010","state":"UPLOADING"}`))
	f.Add([]byte(`{"uploadId":"7","partsState":"1","state":"COMPLETED","resultFileHandleId":"5"}`))
	f.Add([]byte(`{"partsState":5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s MultipartUploadStatus
		if json.Unmarshal(b, &s) != nil {
			return
		}
		n := 0
		for i := range len(s.PartsState) {
			if s.PartsState[i] != '1' {
				n++
			}
		}
		if n > len(s.PartsState) {
			t.Errorf("missing parts: got %d of %d", n, len(s.PartsState))
		}
		_, _ = urlExpiry(s.ResultFileHandleID)
	})
}

func FuzzParseReason(f *testing.F) {
	f.Add([]byte(`{"reason":"Invalid access token"}`))
	f.Add([]byte(`{"concreteType":"org.sagebionetworks.repo.model.ErrorResponse","reason":"x","errorCode":"Y"}`))
	f.Add([]byte(`<html><body>502 Bad Gateway</body></html>`))
	f.Add([]byte(`{"reason":7}`))
	f.Add([]byte{0xc3, 0x28, '\n', 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := ParseReason(b)
		if len(r) > len(b)+len("?")*len(b) {
			t.Errorf("reason longer than its body: %d > %d", len(r), len(b))
		}
	})
}

func FuzzParseINI(f *testing.F) {
	f.Add([]byte("[default]\nauthtoken = x\n[endpoints]\nrepoEndpoint: http://h/repo/v1\n  continued\n"))
	f.Add([]byte("\ufeff[a\n"))
	f.Add([]byte("k=v\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseINI(b)
		if err == nil && m == nil {
			t.Error("parseINI: got nil map and nil error")
		}
	})
}

func TestParseReason(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"reason":"Invalid access token"}`, "Invalid access token"},
		{`{"error":"insufficient_scope","reason":"insufficient_scope. Request lacks scope(s) required by this service: modify"}`, "insufficient_scope. Request lacks scope(s) required by this service: modify"},
		{`<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`, "Request has expired"},
		{"Bad Gateway\nmore", "Bad Gateway"},
		{`{"other":1}`, ""},
		{``, ""},
	}
	for _, c := range cases {
		if got := ParseReason([]byte(c.body)); got != c.want {
			t.Errorf("ParseReason(%q): got %q, want %q", c.body, got, c.want)
		}
	}
}
