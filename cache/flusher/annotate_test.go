package flusher

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// annotClient adds annotations to fakeClient. The first write fails with a
// 412 after someone else set "other", as a concurrent change on
// synapse.org would.
type annotClient struct {
	*fakeClient
	mu     sync.Mutex
	ann    remote.Annotations
	puts   int
	raced  bool
	atDone map[string]remote.AnnotationValue // what Synapse held when OnUploaded ran
}

func (c *annotClient) Annotations(ctx context.Context, id string) (*remote.Annotations, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &remote.Annotations{Etag: c.ann.Etag, Values: cloneAnn(c.ann.Values)}, nil
}

func (c *annotClient) SetAnnotations(ctx context.Context, id string, a *remote.Annotations) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	if !c.raced {
		c.raced = true
		c.ann.Values["other"] = remote.AnnotationValue{Type: remote.TypeString, Values: []string{"web"}}
		c.ann.Etag = "e2"
	}
	if a.Etag != c.ann.Etag {
		return &remote.Error{Op: "PUT annotations2", Status: 412, Kind: remote.ErrStale}
	}
	c.ann = remote.Annotations{Etag: c.ann.Etag + "+", Values: cloneAnn(a.Values)}
	a.Etag = c.ann.Etag
	return nil
}

func cloneAnn(m map[string]remote.AnnotationValue) map[string]remote.AnnotationValue {
	out := map[string]remote.AnnotationValue{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestAnnotationsAppliedBeforeUploaded(t *testing.T) {
	s := memStore(t)
	c := &annotClient{fakeClient: newFake(), ann: remote.Annotations{Etag: "e1", Values: map[string]remote.AnnotationValue{}}}
	var etag string
	fl := newFlusher(t, s, c, Options{OnUploaded: func(r cache.Record, e *remote.Entity) {
		c.mu.Lock()
		c.atDone = cloneAnn(c.ann.Values)
		etag = e.Etag
		c.mu.Unlock()
	}})
	ino := stage(t, s, "syn1", "reads.txt", []byte("hello"))
	if err := s.SetAnnotations(ino, map[string]cache.Annotation{"assay": {Type: "STRING", Values: []string{"rnaSeq"}}}); err != nil {
		t.Fatal(err)
	}
	fl.Enqueue(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.atDone["assay"]; got.Type != "STRING" || len(got.Values) != 1 || got.Values[0] != "rnaSeq" {
		t.Errorf("assay when the file counted as uploaded: got %v, want STRING rnaSeq", got)
	}
	if got := c.atDone["other"]; len(got.Values) != 1 || got.Values[0] != "web" {
		t.Errorf("the concurrent change was lost: other = %v", got)
	}
	if c.puts != 2 {
		t.Errorf("annotation writes: got %d, want 2 (412, then the retry on fresh values)", c.puts)
	}
	if etag != c.ann.Etag {
		t.Errorf("entity etag handed to OnUploaded: got %q, want the etag after the annotations, %q", etag, c.ann.Etag)
	}
	if a, _ := s.Annotations(ino); a != nil {
		t.Errorf("annotations still kept after upload: %v", a)
	}
}

// refusingClient refuses every annotation write, as Synapse does with 400.
type refusingClient struct{ *annotClient }

func (c refusingClient) SetAnnotations(ctx context.Context, id string, a *remote.Annotations) error {
	return &remote.Error{Op: "PUT annotations2", Status: 400, Reason: "Invalid annotation name", Kind: remote.ErrInvalid}
}

func TestRefusedAnnotationsFailTheFile(t *testing.T) {
	s := memStore(t)
	c := refusingClient{&annotClient{fakeClient: newFake(), ann: remote.Annotations{Etag: "e1", Values: map[string]remote.AnnotationValue{}}}}
	uploaded := false
	fl := newFlusher(t, s, c, Options{OnUploaded: func(cache.Record, *remote.Entity) { uploaded = true }})
	ino := stage(t, s, "syn1", "reads.txt", []byte("hello"))
	if err := s.SetAnnotations(ino, map[string]cache.Annotation{"assay": {Type: "STRING", Values: []string{"x"}}}); err != nil {
		t.Fatal(err)
	}
	fl.Enqueue(ino)
	if err := fl.Flush(ctx10s(t), ino); err == nil {
		t.Fatal("Flush succeeded although the annotations were refused")
	}
	rec, err := s.Get(ino)
	if err != nil || rec.State != cache.StateFailed || !strings.Contains(rec.Err, "refused its annotations") {
		t.Errorf("record: got %+v, %v; want failed, naming the annotations", rec, err)
	}
	if uploaded {
		t.Error("the file counted as uploaded although its annotations were refused")
	}
}
