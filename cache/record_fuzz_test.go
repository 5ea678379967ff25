package cache

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzRecordDecode: any bytes stored as a record either fail to decode (a
// corrupt record, reported as such) or decode to a record that encodes
// and decodes to itself; its state's methods never panic.
func FuzzRecordDecode(f *testing.F) {
	good, _ := json.Marshal(&Record{Ino: 7, ParentID: "syn1", Name: "a.txt", Dir: "/P/Data", Size: 10, MD5: "d41d8cd98f00b204e9800998ecf8427e",
		Gen: 3, State: StateUploading, Upload: &Upload{Gen: 3, FileName: "a.txt", PartSize: 8 << 20, MD5: "x", Size: 10}})
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"State":99,"Size":-1,"Gen":18446744073709551615}`))
	f.Add([]byte(`{"Upload":null,"Mtime":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec Record
		if json.Unmarshal(b, &rec) != nil {
			return
		}
		_ = rec.State.String()
		_ = rec.State.pending()
		out, err := json.Marshal(&rec)
		if err != nil {
			return // a time outside what JSON can hold: putRecord refuses it too
		}
		var again Record
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		out2, _ := json.Marshal(&again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("record does not round-trip:\n%s\n%s", out, out2)
		}
	})
}
