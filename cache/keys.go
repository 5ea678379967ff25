package cache

import (
	"bytes"
	"encoding/binary"
)

// The key schema. Every key starts with a one-letter table name and a slash;
// integers are big-endian so that byte-wise order is numeric order. The
// package comment describes each table.
const (
	tabRecord  = 'f' // f/<ino:8>                 → record (JSON)
	tabChunk   = 'c' // c/<ino:8><chunk:8>        → file bytes of one chunk (before the arena; moved at Open)
	tabBlock   = 'b' // b/<ino:8><chunk:8>        → chunkPtr: where the chunk's bytes are in the arena
	tabIndex   = 'x' // x/<parentID>\x00<name>    → ino:8
	tabPending = 'd' // d/<ino:8>                 → empty: the record needs uploading
	tabCounter = 'i' // i/next                    → next unallocated ino:8
	tabGC      = 'g' // g/flush                   → empty: scratch key used to flush the memtable before GC
	tabOwner   = 'o' // o/owner                   → Owner (JSON): the endpoint and user the staged files are for
	tabAnnot   = 'a' // a/<ino:8>                 → annotations to apply once the file's entity exists (JSON)
	tabVersion = 'v' // v/<entityID>\x00<version:8> → Version (JSON): what a File version never changes, and its user attrs
	tabFolder  = 'm' // m/<ino:8>                 → staged folder (JSON)
	tabFIndex  = 'n' // n/<parentID>\x00<name>    → ino:8 of a staged folder not yet created
)

var (
	keyNextIno = []byte("i/next")
	keyGCFlush = []byte("g/flush")
	keyOwner   = []byte{tabOwner, '/', 'o', 'w', 'n', 'e', 'r'} // o/owner
)

func tablePrefix(tab byte) []byte { return []byte{tab, '/'} }

func inoKey(tab byte, ino uint64) []byte {
	k := make([]byte, 2+8)
	k[0], k[1] = tab, '/'
	binary.BigEndian.PutUint64(k[2:], ino)
	return k
}

// recordKey is f/<ino>.
func recordKey(ino uint64) []byte { return inoKey(tabRecord, ino) }

// pendingKey is d/<ino>.
func pendingKey(ino uint64) []byte { return inoKey(tabPending, ino) }

// annotKey is a/<ino>.
func annotKey(ino uint64) []byte { return inoKey(tabAnnot, ino) }

// parseAnnotKey returns the ino of an a/ key.
func parseAnnotKey(k []byte) (uint64, bool) { return parseInoKey(tabAnnot, k) }

// chunkPrefix is c/<ino>, the prefix of all of ino's chunks.
func chunkPrefix(ino uint64) []byte { return inoKey(tabChunk, ino) }

// chunkKey is c/<ino><chunk>.
func chunkKey(ino uint64, chunk int64) []byte { return inoChunkKey(tabChunk, ino, chunk) }

// inoChunkKey is <tab>/<ino><chunk>, the shape of c/ and b/ keys.
func inoChunkKey(tab byte, ino uint64, chunk int64) []byte {
	k := make([]byte, 2+8+8)
	k[0], k[1] = tab, '/'
	binary.BigEndian.PutUint64(k[2:], ino)
	binary.BigEndian.PutUint64(k[10:], uint64(chunk))
	return k
}

// indexPrefix is x/<parentID>\x00, the prefix of every staged name in a folder.
func indexPrefix(parentID string) []byte {
	k := make([]byte, 0, 3+len(parentID))
	k = append(k, tabIndex, '/')
	k = append(k, parentID...)
	return append(k, 0)
}

// indexKey is x/<parentID>\x00<name>.
func indexKey(parentID, name string) []byte {
	return append(indexPrefix(parentID), name...)
}

// folderKey is m/<ino>.
func folderKey(ino uint64) []byte { return inoKey(tabFolder, ino) }

// parseFolderKey returns the ino of an m/ key.
func parseFolderKey(k []byte) (uint64, bool) { return parseInoKey(tabFolder, k) }

// folderIndexPrefix is n/<parentID>\x00, the prefix of every staged folder
// in a folder.
func folderIndexPrefix(parentID string) []byte {
	k := make([]byte, 0, 3+len(parentID))
	k = append(k, tabFIndex, '/')
	k = append(k, parentID...)
	return append(k, 0)
}

// folderIndexKey is n/<parentID>\x00<name>.
func folderIndexKey(parentID, name string) []byte {
	return append(folderIndexPrefix(parentID), name...)
}

func parseInoKey(tab byte, k []byte) (uint64, bool) {
	if len(k) != 10 || k[0] != tab || k[1] != '/' {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[2:]), true
}

// parseRecordKey returns the ino of an f/ key.
func parseRecordKey(k []byte) (uint64, bool) { return parseInoKey(tabRecord, k) }

// parsePendingKey returns the ino of a d/ key.
func parsePendingKey(k []byte) (uint64, bool) { return parseInoKey(tabPending, k) }

// blockPrefix is b/<ino>, the prefix of all of ino's chunk pointers.
func blockPrefix(ino uint64) []byte { return inoKey(tabBlock, ino) }

// blockKey is b/<ino><chunk>.
func blockKey(ino uint64, chunk int64) []byte { return inoChunkKey(tabBlock, ino, chunk) }

// parseBlockKey returns the ino and chunk number of a b/ key.
func parseBlockKey(k []byte) (ino uint64, chunk int64, ok bool) {
	return parseInoChunkKey(tabBlock, k)
}

// parseChunkKey returns the ino and chunk number of a c/ key.
func parseChunkKey(k []byte) (ino uint64, chunk int64, ok bool) {
	return parseInoChunkKey(tabChunk, k)
}

// parseInoChunkKey parses a <tab>/<ino><chunk> key.
func parseInoChunkKey(tab byte, k []byte) (ino uint64, chunk int64, ok bool) {
	if len(k) != 18 || k[0] != tab || k[1] != '/' {
		return 0, 0, false
	}
	c := binary.BigEndian.Uint64(k[10:])
	if c > 1<<62 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(k[2:]), int64(c), true
}

// parseIndexKey returns the parent ID and name of an x/ key.
func parseIndexKey(k []byte) (parentID, name string, ok bool) {
	if len(k) < 3 || k[0] != tabIndex || k[1] != '/' {
		return "", "", false
	}
	rest := k[2:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 || bytes.IndexByte(rest[i+1:], 0) >= 0 {
		return "", "", false
	}
	return string(rest[:i]), string(rest[i+1:]), true
}

// versionKey is v/<entityID>\x00<version:8>.
func versionKey(entityID string, version int64) []byte {
	k := make([]byte, 0, 2+len(entityID)+1+8)
	k = append(k, tabVersion, '/')
	k = append(k, entityID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(version))
}

// parseVersionKey returns the entity ID and version number of a v/ key.
func parseVersionKey(k []byte) (entityID string, version int64, ok bool) {
	if len(k) < 2+1+8 || k[0] != tabVersion || k[1] != '/' {
		return "", 0, false
	}
	id, v := k[2:len(k)-9], k[len(k)-9:]
	if v[0] != 0 || bytes.IndexByte(id, 0) >= 0 {
		return "", 0, false
	}
	n := binary.BigEndian.Uint64(v[1:])
	if n > 1<<62 {
		return "", 0, false
	}
	return string(id), int64(n), true
}

// encodeIno and decodeIno are the value format of x/ and i/next.
func encodeIno(ino uint64) []byte {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, ino)
	return v
}

func decodeIno(v []byte) (uint64, bool) {
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}
