package emulator

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestLinkRatePacesTransfers: with LinkRate set, a part PUT and a blob GET
// each take at least their bytes over the rate, and two GETs at once share
// the rate (together they take at least twice as long as one).
func TestLinkRatePacesTransfers(t *testing.T) {
	const rate = 4 << 20 // bytes a second
	e := newEnv(t, Options{LinkRate: rate})
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: 250 ms at the rate
	least := time.Duration(float64(len(data)) / rate * float64(time.Second))

	start := time.Now()
	id := e.createFile(e.alice, e.folder, "paced.bin", data)["id"].(string)
	if took := time.Since(start); took < least*9/10 {
		t.Errorf("upload of %d bytes took %v, want at least %v at %d B/s", len(data), took, least, rate)
	}
	fh := e.do(e.alice, "GET", "/repo/v1/entity/"+id, nil).json(t)["dataFileHandleId"].(string)
	r := e.do(e.alice, "GET", "/file/v1/file/"+fh+"?fileAssociateType=FileEntity&fileAssociateId="+id+"&redirect=false", nil)
	want(t, r, http.StatusOK, "")
	url := string(r.body)

	get := func() ([]byte, error) {
		res, err := http.Get(url)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		return io.ReadAll(res.Body)
	}
	start = time.Now()
	var wg sync.WaitGroup
	got := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = get() })
	}
	wg.Wait()
	took := time.Since(start)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], data) {
			t.Fatalf("GET %d: %v, %d bytes, equal %v", i, errs[i], len(got[i]), bytes.Equal(got[i], data))
		}
	}
	if took < 2*least*9/10 {
		t.Errorf("two GETs of %d bytes at once took %v, want at least %v: they must share the rate", len(data), took, 2*least)
	}

	// Without LinkRate nothing is paced: the same GET is far faster.
	free := newEnv(t, Options{})
	id = free.createFile(free.alice, free.folder, "free.bin", data)["id"].(string)
	fh = free.do(free.alice, "GET", "/repo/v1/entity/"+id, nil).json(t)["dataFileHandleId"].(string)
	url = string(free.do(free.alice, "GET", "/file/v1/file/"+fh+"?fileAssociateType=FileEntity&fileAssociateId="+id+"&redirect=false", nil).body)
	start = time.Now()
	if b, err := get(); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("unpaced GET: %v", err)
	}
	if took := time.Since(start); took >= least {
		t.Logf("unpaced GET took %v (a loaded machine?)", took)
	}
}

// TestLinkPassWaitsInTurn: reservations queue behind each other and an idle
// link saves no more than linkSlack of credit.
func TestLinkPassWaitsInTurn(t *testing.T) {
	var nilLink *link
	if err := nilLink.pass(t.Context(), 1<<30); err != nil {
		t.Fatal(err)
	}
	l := newLink(1 << 20) // 1 MiB/s
	start := time.Now()
	for range 4 {
		if err := l.pass(t.Context(), 64<<10); err != nil { // 62.5 ms each
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 240*time.Millisecond {
		t.Errorf("4 × 64 KiB at 1 MiB/s took %v, want at least 250 ms", took)
	}
	time.Sleep(200 * time.Millisecond) // an idle link, which must bank at most linkSlack
	start = time.Now()
	if err := l.pass(t.Context(), 64<<10); err != nil {
		t.Fatal(err)
	}
	if took, least := time.Since(start), 62500*time.Microsecond-linkSlack; took < least {
		t.Errorf("64 KiB after an idle link took %v, want at least %v", took, least)
	}
}
