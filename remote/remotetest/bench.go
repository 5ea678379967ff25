package remotetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
)

// BenchUpload uploads size bytes to a new file under parent in each
// iteration, from a Pattern (nothing is held in memory), and reports the
// throughput as MB/s. Each iteration has different content, so no upload is
// skipped as unchanged; the uploaded files are trashed afterwards.
func BenchUpload(b *testing.B, c remote.Client, parent string, size int64) {
	b.Helper()
	ctx := context.Background()
	stamp := time.Now().UnixNano()
	var ids []string
	defer func() {
		for _, id := range ids {
			if err := c.Delete(ctx, id); err != nil {
				b.Errorf("Delete(%s): %v", id, err)
			}
		}
	}()
	b.SetBytes(size)
	var busy time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := Pattern{Seed: uint64(stamp) + uint64(i), Size: size}
		req := &remote.UploadRequest{ParentID: parent, Name: fmt.Sprintf("bench-%d-%d.bin", stamp, i), Size: size, MD5: p.MD5(), Source: p}
		b.StartTimer()
		start := time.Now()
		e, err := c.Upload(ctx, req)
		busy += time.Since(start)
		if err != nil {
			b.Fatalf("Upload of %d bytes: %v", size, err)
		}
		ids = append(ids, e.ID)
		if e.Size != size {
			b.Fatalf("uploaded size: got %d, want %d", e.Size, size)
		}
	}
	if busy > 0 {
		b.ReportMetric(float64(size)*float64(len(ids))/busy.Seconds()/1e6, "MB/s")
	}
}
