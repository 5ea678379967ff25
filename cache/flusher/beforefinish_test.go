package flusher

import (
	"sync"
	"testing"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// BeforeFinish runs once the entity is in Synapse and while the staged record
// is still there, before OnUploaded: a file system can list the entity
// before the record leaves, so that the file is never found in neither.
func TestBeforeFinishBeforeRecordGoes(t *testing.T) {
	s := memStore(t)
	c := newFake()
	var mu sync.Mutex
	var calls []string
	fl := newFlusher(t, s, c, Options{
		BeforeFinish: func(r cache.Record, e *remote.Entity) {
			_, err := s.Get(r.Ino)
			mu.Lock()
			calls = append(calls, "created:"+e.ID)
			if err != nil {
				calls = append(calls, "record gone: "+err.Error())
			}
			mu.Unlock()
		},
		OnUploaded: func(r cache.Record, e *remote.Entity) {
			mu.Lock()
			calls = append(calls, "uploaded:"+e.ID)
			mu.Unlock()
		},
	})
	ino := stage(t, s, "syn1", "a.txt", []byte("some bytes"))
	fl.Enqueue(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0] != "created:syn99" || calls[1] != "uploaded:syn99" {
		t.Errorf("hooks called %q; want created (record still staged), then uploaded", calls)
	}
}
