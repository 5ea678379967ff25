package main

import (
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/flusher"
	"github.com/synfs/synfs/cache/writeback"
	"github.com/synfs/synfs/control"
)

// The status states, from the cache state and the queue state.
func TestFileState(t *testing.T) {
	for _, c := range []struct {
		s    flusher.FileStatus
		want string
	}{
		{flusher.FileStatus{Cache: cache.StateOpen}, control.StateOpen},
		{flusher.FileStatus{Cache: cache.StateDirty, Queued: true, Queue: writeback.StateWaiting}, control.StateDirty},
		{flusher.FileStatus{Cache: cache.StateDirty, Queued: true, Queue: writeback.StateBackoff, Err: "503", Due: time.Now()}, control.StateRetrying},
		{flusher.FileStatus{Cache: cache.StateDirty, Err: "503"}, control.StateRetrying},
		{flusher.FileStatus{Cache: cache.StateUploading, Queued: true, Queue: writeback.StateUploading}, control.StateUploading},
		{flusher.FileStatus{Cache: cache.StateUploading, Queued: true, Queue: writeback.StateBackoff}, control.StateRetrying},
		{flusher.FileStatus{Cache: cache.StateFailed, Err: "no"}, control.StateFailed},
		{flusher.FileStatus{Cache: cache.StateEmpty}, control.StateEmpty},
	} {
		if got := fileState(c.s); got != c.want {
			t.Errorf("fileState(%+v) = %s, want %s", c.s, got, c.want)
		}
	}
}
