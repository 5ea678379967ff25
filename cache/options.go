package cache

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Options configures a Store. The zero value of every field but Dir (or
// InMemory) selects the documented default.
type Options struct {
	// Dir is the cache directory. It is created with mode 0700, and
	// tightened to 0700 when it exists with wider permissions.
	Dir string
	// InMemory keeps everything in memory (tests); Dir must then be "".
	InMemory bool
	// MaxSize caps the bytes of staged, not yet uploaded, file data. A write
	// that would exceed it waits for uploads to free space. 0 means no cap.
	MaxSize int64
	// SpaceWait is how long a write waits for space before failing with
	// ErrNoSpace. Default 30s.
	SpaceWait time.Duration
	// ChunkSize is the size of the chunks file bytes are stored in. Default
	// and maximum 1 MiB (the size of an arena slot).
	ChunkSize int
	// GCInterval is the period of the value-log garbage collector. Default 1
	// minute. GC also runs after chunks kept in Badger by an older synfs
	// were moved into the arena at Open.
	GCInterval time.Duration
	// SyncWrites makes every Badger write durable before it returns. Default
	// false: File.Sync is the explicit durability point.
	SyncWrites bool
	// Logger receives Badger's warnings and errors and the store's own
	// messages. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for modification times. Default time.Now.
	Now func() time.Time
	// DiskHeadroom is the free space staging leaves on the cache disk: a
	// write that would take it waits, then fails with ErrNoSpace, like one
	// past MaxSize. Default 5% of the disk, at least 64 MiB and at most
	// 8 GiB; negative turns the check off (tests).
	DiskHeadroom int64
	// Reserve is the size of the reserve file kept in Dir and given back
	// when the disk fills (see disk.go). Default 32 MiB; negative: none.
	Reserve int64
}

// Defaults and limits.
const (
	MaxChunkSize      = 1 << 20
	defaultSpaceWait  = 30 * time.Second
	defaultGCInterval = time.Minute
	gcAfterFreed      = 64 << 20
)

func (o Options) withDefaults() (Options, error) {
	if o.InMemory && o.Dir != "" {
		return o, fmt.Errorf("cache: Dir must be empty with InMemory")
	}
	if !o.InMemory && o.Dir == "" {
		return o, fmt.Errorf("cache: no cache directory given")
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = MaxChunkSize
	}
	if o.ChunkSize < 0 || o.ChunkSize > MaxChunkSize {
		return o, fmt.Errorf("cache: chunk size %d out of range 1..%d", o.ChunkSize, MaxChunkSize)
	}
	if o.MaxSize < 0 {
		return o, fmt.Errorf("cache: negative MaxSize %d", o.MaxSize)
	}
	if o.SpaceWait <= 0 {
		o.SpaceWait = defaultSpaceWait
	}
	if o.GCInterval <= 0 {
		o.GCInterval = defaultGCInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Reserve == 0 {
		o.Reserve = defaultReserve
	}
	return o, nil
}

// badger returns the Badger options for o. It is the one place where Badger
// is tuned: a desktop daemon wants little memory and a value log that
// garbage collection can shrink back after a drain.
//
//   - Memtables: 2 × 16 MiB instead of 5 × 64 MiB. The largest write batch
//     is 15% of a memtable (2.4 MiB), still above one 1 MiB chunk.
//   - Block cache 8 MiB and index cache 8 MiB instead of 256 MiB and
//     unbounded: tables hold only keys and value pointers.
//   - No compression: chunk bytes live in the value log, which Badger never
//     compresses, and keys do not compress well.
//   - Value threshold 4 KiB on disk, so chunks go to the value log and
//     garbage collection reclaims them. In memory Badger rejects any value
//     above the threshold, so there it stays at 1 MiB.
//   - Value-log files of 32 MiB, so that after a drain GC can drop all but
//     the newest, small file.
//   - Two compactors, the minimum Badger allows.
func (o Options) badger() badger.Options {
	bo := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(8 << 20).
		WithCompression(options.None).
		WithValueLogFileSize(32 << 20).
		WithNumCompactors(2).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{o.Logger})
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithValueThreshold(MaxChunkSize)
	} else {
		bo = bo.WithValueThreshold(4 << 10)
	}
	return bo
}

// badgerLogger passes Badger's warnings and errors to slog and drops its
// informational chatter.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Log(context.Background(), slog.LevelError, "badger: "+trimNL(fmt.Sprintf(f, a...)))
}

func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Log(context.Background(), slog.LevelWarn, "badger: "+trimNL(fmt.Sprintf(f, a...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
