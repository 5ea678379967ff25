package synapse_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/remotetest"
	"github.com/synfs/synfs/remote/synapse"
)

const (
	demoToken = "emu-demo-token"
)

type emuEnv struct {
	em     *emulator.Server
	url    string
	folder string
}

func newEmu(t testing.TB, o emulator.Options) *emuEnv {
	t.Helper()
	em, err := emulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	t.Cleanup(func() { srv.Close(); em.Close() })
	_, folder, err := em.Seed(demoToken)
	if err != nil {
		t.Fatal(err)
	}
	return &emuEnv{em: em, url: srv.URL, folder: folder}
}

func (e *emuEnv) client(t testing.TB, token string) *synapse.Client {
	t.Helper()
	repo, file, auth := synapse.Endpoints(e.url)
	c, err := synapse.New(synapse.Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth, Token: token,
		RetryBase: 2 * time.Millisecond, RetryCap: 50 * time.Millisecond, MaxRetries: 12, RatePerMinute: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConformanceEmulator runs the conformance suite against the emulator
// over real HTTP, with the users the emulator can provide.
func TestConformanceEmulator(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.em.AddUser("newbie", "newbie-token", false)
	e.em.AddUser("stranger", "stranger-token", true)
	if err := e.em.Grant(e.folder, "newbie", "READ", "DOWNLOAD", "CREATE", "UPDATE", "DELETE"); err != nil {
		t.Fatal(err)
	}
	remotetest.Run(t, remotetest.Env{
		Client:      e.client(t, demoToken),
		Parent:      e.folder,
		Uncertified: e.client(t, "newbie-token"),
		NoAccess:    e.client(t, "stranger-token"),
		BadToken:    e.client(t, "no-such-token"),
	})
}

// TestFaultsExactlyOnce uploads through 503s on parts, 429s and dropped
// answers on every REST call that creates something, and checks that each
// file is one entity with one version and the right bytes.
func TestFaultsExactlyOnce(t *testing.T) {
	e := newEmu(t, emulator.Options{Throttle: true, FaultSeed: 7})
	e.em.AddFault(emulator.Fault{Route: "PUT /s3/", Status: 503, Prob: 0.2})
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", Status: 429, Prob: 0.3})
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", DropAfterHandling: true, FirstN: 4})
	e.em.AddFault(emulator.Fault{Route: "PUT /repo/v1/entity/", DropAfterHandling: true, FirstN: 2})
	e.em.AddFault(emulator.Fault{Route: "PUT /file/v1/file/multipart/", DropAfterHandling: true, FirstN: 4})
	e.em.AddFault(emulator.Fault{Route: "POST /file/v1/file/multipart", DropAfterHandling: true, FirstN: 2})
	c := e.client(t, demoToken)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	pats := map[string]remotetest.Pattern{}
	for i := 0; i < 8; i++ {
		size := int64(1000 + i)
		if i%3 == 0 {
			size = 11 << 20
		}
		p := remotetest.Pattern{Seed: uint64(i + 1), Size: size}
		name := fmt.Sprintf("f%d.bin", i)
		pats[name] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Upload(ctx, &remote.UploadRequest{ParentID: e.folder, Name: name, Size: p.Size, MD5: p.MD5(), Source: p})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The same files again (a retry after a crash): nothing new.
	for name, p := range pats {
		if _, err := c.Upload(ctx, &remote.UploadRequest{ParentID: e.folder, Name: name, Size: p.Size, MD5: p.MD5(), Source: p}); err != nil {
			t.Error(err)
		}
	}
	kids := e.em.Children(e.folder)
	if len(kids) != len(pats) {
		t.Fatalf("got %d entities, want %d", len(kids), len(pats))
	}
	for _, k := range kids {
		p := pats[k.Name]
		if len(k.Versions) != 1 || k.Versions[0].MD5 != p.MD5() || k.Versions[0].Size != p.Size {
			t.Errorf("%s: got %+v, want one version with md5 %s", k.Name, k.Versions, p.MD5())
		}
	}
	if st := e.em.Stats(); st.FaultsInjected == 0 {
		t.Error("no fault was injected: the test proves nothing")
	}
}

// TestFolderCreateLostAnswer: a CreateFolder whose answer is lost ends in
// exactly one folder.
func TestFolderCreateLostAnswer(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", DropAfterHandling: true, FirstN: 1})
	c := e.client(t, demoToken)
	f, err := c.CreateFolder(context.Background(), e.folder, "level1")
	if err != nil && !errors.Is(err, remote.ErrExist) {
		t.Fatal(err)
	}
	kids := e.em.Children(e.folder)
	if len(kids) != 1 || kids[0].ID != f.ID {
		t.Fatalf("got %+v, want exactly the folder %s", kids, f.ID)
	}
}

// TestUploadCancelledAwaitsItsCreate: an upload cancelled while its
// entity's create is on its way returns only once Synapse has answered
// that create, so that a caller who cancels, waits and then looks finds
// what it made.
func TestUploadCancelledAwaitsItsCreate(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	sent := make(chan struct{}, 1)
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", Transit: 300 * time.Millisecond, FirstN: 1,
		Fired: func() { sent <- struct{}{} }})
	c := e.client(t, demoToken)
	data := []byte("transit\n")
	sum := md5.Sum(data)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-sent; cancel() }()
	_, err := c.Upload(ctx, &remote.UploadRequest{ParentID: e.folder, Name: "t.txt", Size: int64(len(data)),
		MD5: hex.EncodeToString(sum[:]), Source: bytes.NewReader(data), Absent: true})
	kids := e.em.Children(e.folder)
	if len(kids) != 1 || kids[0].Name != "t.txt" {
		t.Fatalf("Upload returned (%v) with children %+v, want t.txt created", err, kids)
	}
}

// TestUploadCancelledSendsNoNewCreate: an upload cancelled while Synapse
// throttles its create (429: not carried out) sends no new one; only a
// create already sent is waited for.
func TestUploadCancelledSendsNoNewCreate(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", Status: http.StatusTooManyRequests, FirstN: 1, Fired: cancel})
	c := e.client(t, demoToken)
	data := []byte("never created\n")
	sum := md5.Sum(data)
	_, err := c.Upload(ctx, &remote.UploadRequest{ParentID: e.folder, Name: "n.txt", Size: int64(len(data)),
		MD5: hex.EncodeToString(sum[:]), Source: bytes.NewReader(data), Absent: true})
	if err == nil {
		t.Fatal("Upload succeeded after it was cancelled")
	}
	if n := e.em.RequestCounts()["POST /repo/v1/entity"]; n != 1 {
		t.Errorf("%d creates sent, want 1 (the throttled one, before the cancel)", n)
	}
	if kids := e.em.Children(e.folder); len(kids) != 0 {
		t.Errorf("children %+v, want none", kids)
	}
}

// TestSameUploadInTwoFolders: the same content under the same name,
// uploaded to two folders at once, is one multipart upload in Synapse (the
// request names no folder). The second completes it while the first's
// part is being added; the first must still end with its entity, not fail
// with "Cannot add parts to completed file upload."
func TestSameUploadInTwoFolders(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	other, err := e.em.CreateFolder(demoToken, e.folder, "other")
	if err != nil {
		t.Fatal(err)
	}
	adding := make(chan struct{}, 1)
	e.em.AddFault(emulator.Fault{Route: "PUT /file/v1/file/multipart/{uploadId}/add/{part}", Latency: 500 * time.Millisecond,
		FirstN: 1, Fired: func() { adding <- struct{}{} }})
	c := e.client(t, demoToken)
	data := []byte("the same bytes\n")
	sum := md5.Sum(data)
	upload := func(parent string) (*remote.Entity, error) {
		return c.Upload(context.Background(), &remote.UploadRequest{ParentID: parent, Name: "same.txt",
			Size: int64(len(data)), MD5: hex.EncodeToString(sum[:]), Source: bytes.NewReader(data), Absent: true})
	}
	type result struct {
		e   *remote.Entity
		err error
	}
	first := make(chan result, 1)
	go func() { ent, err := upload(e.folder); first <- result{ent, err} }()
	<-adding // the first upload's part is on its way to being added
	if _, err := upload(other); err != nil {
		t.Fatalf("second upload: %v", err)
	}
	r := <-first
	if r.err != nil {
		t.Fatalf("first upload: %v", r.err)
	}
	// The recovery costs one more start (which finds the upload completed)
	// and one read of its handle, nothing else.
	n := e.em.RequestCounts()
	if n["POST /file/v1/file/multipart"] != 3 || n["GET /file/v1/fileHandle/{id}"] != 1 {
		t.Errorf("multipart starts %d, handle reads %d; want 3 (one per upload, one to recheck) and 1",
			n["POST /file/v1/file/multipart"], n["GET /file/v1/fileHandle/{id}"])
	}
	for _, parent := range []string{e.folder, other} {
		kids := e.em.Children(parent)
		var names []string
		for _, k := range kids {
			names = append(names, k.Name)
		}
		if !slices.Contains(names, "same.txt") {
			t.Errorf("%s holds %v, want same.txt", parent, names)
		}
	}
}

// BenchmarkUploadVsRawPUT compares remote.Client.Upload of 1 GiB with a raw
// parallel PUT of the same bytes to presigned URLs of the same emulator
// (same part size, same parallelism, no MD5s, no add-part, no entity).
// Both sides read the same generated bytes and the emulator does the same
// work for every part (it hashes and stores it, as S3 does). Besides the
// wall-clock ratio it reports the CPU time of this process (client and
// emulator) per GiB for each side: on a shared machine the wall clock
// varies with the neighbours' load, the CPU cost much less.
// Run: go test -run XXX -bench UploadVsRawPUT -benchtime 1x ./remote/synapse/
//
// Both run on loopback, where the two cores are the limit (the client's
// part MD5s, which the raw PUTs skip, cost CPU the emulator needs too), and
// over a 1 Gbit/s link (125 MB/s shared by all transfers, 10 ms more per
// request), as a server uploading to S3 sees it.
func BenchmarkUploadVsRawPUT(b *testing.B) {
	for _, l := range []struct {
		name    string
		rate    int64
		latency time.Duration
	}{{"loopback", 0, 0}, {"link1Gbit", 125_000_000, 10 * time.Millisecond}} {
		b.Run(l.name, func(b *testing.B) { benchUploadVsRawPUT(b, l.rate, l.latency) })
	}
}

func benchUploadVsRawPUT(b *testing.B, rate int64, latency time.Duration) {
	size := int64(1 << 30)
	e := newEmu(b, emulator.Options{DataDir: b.TempDir(), SkipAssembledMD5: true, LinkRate: rate})
	if latency > 0 {
		e.em.AddFault(emulator.Fault{Route: "*", Latency: latency})
	}
	c := e.client(b, demoToken)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		p := remotetest.Pattern{Seed: uint64(time.Now().UnixNano()), Size: size}
		md5 := p.MD5()
		// Baseline: raw parallel PUTs.
		ps := remote.PartSizeFor(size)
		st, err := c.StartMultipart(ctx, &synapse.MultipartUploadRequest{FileName: "raw.bin", FileSizeBytes: size,
			PartSizeBytes: ps, ContentMD5Hex: md5}, true)
		if err != nil {
			b.Fatal(err)
		}
		n := (size + ps - 1) / ps
		var parts []int64
		for k := int64(1); k <= n; k++ {
			parts = append(parts, k)
		}
		urls, err := c.PresignedPartURLs(ctx, st.UploadID, parts)
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		start := time.Now()
		rawPut(b, urls, p, ps, size, synapse.DefaultPartConcurrency)
		raw := time.Since(start)
		cpu1 := cpuTime()

		start = time.Now()
		if _, err := c.Upload(ctx, &remote.UploadRequest{ParentID: e.folder, Name: fmt.Sprintf("up%d.bin", i), Size: size, MD5: md5, Source: p}); err != nil {
			b.Fatal(err)
		}
		up := time.Since(start)
		cpu2 := cpuTime()
		gib := float64(size) / (1 << 30)
		b.ReportMetric(float64(size)/raw.Seconds()/1e6, "raw-MB/s")
		b.ReportMetric(float64(size)/up.Seconds()/1e6, "upload-MB/s")
		b.ReportMetric(raw.Seconds()/up.Seconds(), "ratio")
		b.ReportMetric((cpu1-cpu0).Seconds()/gib, "raw-cpu-s/GiB")
		b.ReportMetric((cpu2-cpu1).Seconds()/gib, "upload-cpu-s/GiB")
		b.ReportMetric((cpu1-cpu0).Seconds()/(cpu2-cpu1).Seconds(), "cpu-ratio")
	}
}

func rawPut(b *testing.B, urls []synapse.PartPresignedURL, src io.ReaderAt, ps, size int64, par int) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, u := range urls {
		off := (u.PartNumber - 1) * ps
		length := min(ps, size-off)
		wg.Add(1)
		sem <- struct{}{}
		go func(url string) {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodPut, url, io.NewSectionReader(src, off, length))
			req.ContentLength = length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				b.Errorf("raw PUT: %s", resp.Status)
			}
		}(u.UploadPresignedURL)
	}
	wg.Wait()
}

// cpuTime is the user and system CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
