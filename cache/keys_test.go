package cache

import (
	"bytes"
	"testing"
)

func TestKeysRoundTrip(t *testing.T) {
	inos := []uint64{0, 1, 255, 256, 1 << 32, 1<<64 - 1}
	for _, ino := range inos {
		if got, ok := parseRecordKey(recordKey(ino)); !ok || got != ino {
			t.Errorf("parseRecordKey(recordKey(%d)) = %d, %v; want %d, true", ino, got, ok, ino)
		}
		if got, ok := parseAnnotKey(annotKey(ino)); !ok || got != ino {
			t.Errorf("parseAnnotKey(annotKey(%d)) = %d, %v; want %d, true", ino, got, ok, ino)
		}
		if got, ok := parsePendingKey(pendingKey(ino)); !ok || got != ino {
			t.Errorf("parsePendingKey(pendingKey(%d)) = %d, %v; want %d, true", ino, got, ok, ino)
		}
		for _, c := range []int64{0, 1, 1 << 20, 1 << 40} {
			k := chunkKey(ino, c)
			gi, gc, ok := parseChunkKey(k)
			if !ok || gi != ino || gc != c {
				t.Errorf("parseChunkKey(chunkKey(%d, %d)) = %d, %d, %v; want %d, %d, true", ino, c, gi, gc, ok, ino, c)
			}
			if !bytes.HasPrefix(k, chunkPrefix(ino)) {
				t.Errorf("chunkKey(%d, %d) = %x lacks prefix %x", ino, c, k, chunkPrefix(ino))
			}
			b := blockKey(ino, c)
			if gi, gc, ok := parseBlockKey(b); !ok || gi != ino || gc != c || !bytes.HasPrefix(b, blockPrefix(ino)) {
				t.Errorf("parseBlockKey(blockKey(%d, %d)) = %d, %d, %v", ino, c, gi, gc, ok)
			}
			if _, _, ok := parseChunkKey(b); ok {
				t.Errorf("parseChunkKey accepts the b/ key %x", b)
			}
		}
		if v, ok := decodeIno(encodeIno(ino)); !ok || v != ino {
			t.Errorf("decodeIno(encodeIno(%d)) = %d, %v", ino, v, ok)
		}
	}
	for _, tc := range []struct{ parent, name string }{
		{"syn1", "a"}, {"syn123456789", "reads (1).fastq"}, {"", "x"}, {"syn2", ""},
	} {
		k := indexKey(tc.parent, tc.name)
		p, n, ok := parseIndexKey(k)
		if !ok || p != tc.parent || n != tc.name {
			t.Errorf("parseIndexKey(indexKey(%q, %q)) = %q, %q, %v", tc.parent, tc.name, p, n, ok)
		}
		if !bytes.HasPrefix(k, indexPrefix(tc.parent)) {
			t.Errorf("indexKey(%q, %q) lacks its folder prefix", tc.parent, tc.name)
		}
	}
}

func TestVersionKeys(t *testing.T) {
	for _, tc := range []struct {
		id string
		v  int64
	}{{"syn1", 1}, {"syn123456789", 15000}, {"", 0}, {"syn9", 1 << 40}} {
		id, v, ok := parseVersionKey(versionKey(tc.id, tc.v))
		if !ok || id != tc.id || v != tc.v {
			t.Errorf("parseVersionKey(versionKey(%q, %d)) = %q, %d, %v", tc.id, tc.v, id, v, ok)
		}
	}
	// An entity's key does not share a prefix with an entity whose ID extends it.
	if bytes.HasPrefix(versionKey("syn12", 1), versionKey("syn1", 1)[:len("v/syn1")+1]) {
		t.Errorf("versionKey(syn12) has the prefix of syn1")
	}
	for _, k := range [][]byte{nil, []byte("v/"), []byte("v/syn1"), recordKey(1), []byte("v/a\x00b\x00\x00\x00\x00\x00\x00\x00\x01")} {
		if _, _, ok := parseVersionKey(k); ok {
			t.Errorf("parseVersionKey(%q) accepted", k)
		}
	}
}

func TestKeysOrder(t *testing.T) {
	// Byte order is numeric order, so scans run in ino and chunk order.
	if bytes.Compare(chunkKey(1, 255), chunkKey(1, 256)) >= 0 {
		t.Errorf("chunkKey(1, 255) sorts after chunkKey(1, 256)")
	}
	if bytes.Compare(chunkKey(1, 1<<40), chunkKey(2, 0)) >= 0 {
		t.Errorf("chunks of ino 1 sort after those of ino 2")
	}
	// A folder's prefix does not match a folder whose ID extends it.
	if bytes.HasPrefix(indexKey("syn12", "a"), indexPrefix("syn1")) {
		t.Errorf("indexKey(syn12, a) has the prefix of folder syn1")
	}
	// The tables do not overlap.
	if bytes.HasPrefix(recordKey(7), tablePrefix(tabChunk)) || bytes.HasPrefix(keyNextIno, tablePrefix(tabRecord)) {
		t.Errorf("tables overlap")
	}
}

func TestKeysReject(t *testing.T) {
	bad := [][]byte{nil, []byte("f/"), []byte("c/12345678"), append([]byte("x/"), "noNUL"...), recordKey(1)[:9], []byte("x/a\x00b\x00c")}
	for _, k := range bad {
		if _, ok := parseRecordKey(k); ok && len(k) != 10 {
			t.Errorf("parseRecordKey(%q) accepted", k)
		}
		if _, _, ok := parseChunkKey(k); ok {
			t.Errorf("parseChunkKey(%q) accepted", k)
		}
	}
	if _, _, ok := parseIndexKey([]byte("x/a\x00b\x00c")); ok {
		t.Errorf("parseIndexKey accepted a key with two NULs")
	}
	if _, ok := parseRecordKey(pendingKey(1)); ok {
		t.Errorf("parseRecordKey accepted a d/ key")
	}
}

func FuzzKeys(f *testing.F) {
	f.Add(uint64(1), int64(0), "syn1", "a.txt", []byte("c/\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"))
	f.Add(uint64(1<<63), int64(1<<40), "", "", []byte("x/syn\x00"))
	f.Fuzz(func(t *testing.T, ino uint64, chunk int64, parent, name string, raw []byte) {
		if chunk >= 0 && chunk <= 1<<62 {
			gi, gc, ok := parseChunkKey(chunkKey(ino, chunk))
			if !ok || gi != ino || gc != chunk {
				t.Fatalf("chunk round trip (%d, %d) = (%d, %d, %v)", ino, chunk, gi, gc, ok)
			}
		}
		if !bytes.ContainsRune([]byte(parent), 0) && !bytes.ContainsRune([]byte(name), 0) {
			p, n, ok := parseIndexKey(indexKey(parent, name))
			if !ok || p != parent || n != name {
				t.Fatalf("index round trip (%q, %q) = (%q, %q, %v)", parent, name, p, n, ok)
			}
		}
		// Parsers never panic, and what they accept re-encodes to the input.
		if i, c, ok := parseChunkKey(raw); ok && !bytes.Equal(chunkKey(i, c), raw) {
			t.Fatalf("parseChunkKey(%x) = (%d, %d) does not re-encode", raw, i, c)
		}
		if i, ok := parseRecordKey(raw); ok && !bytes.Equal(recordKey(i), raw) {
			t.Fatalf("parseRecordKey(%x) = %d does not re-encode", raw, i)
		}
		if id, v, ok := parseVersionKey(raw); ok && !bytes.Equal(versionKey(id, v), raw) {
			t.Fatalf("parseVersionKey(%x) = (%q, %d) does not re-encode", raw, id, v)
		}
		if i, ok := parseFolderKey(raw); ok && !bytes.Equal(folderKey(i), raw) {
			t.Fatalf("parseFolderKey(%x) = %d does not re-encode", raw, i)
		}
		if i, ok := ParseLocalID(string(raw)); ok && LocalID(i) != string(raw) {
			t.Fatalf("ParseLocalID(%q) = %d does not re-encode", raw, i)
		}
		if p, n, ok := parseIndexKey(raw); ok && !bytes.Equal(indexKey(p, n), raw) {
			t.Fatalf("parseIndexKey(%x) = (%q, %q) does not re-encode", raw, p, n)
		}
	})
}
