package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

func TestParseManifest(t *testing.T) {
	tsv := "path\tparent\tname\tused\tassay\treps\tzip\n" +
		"/data/a.txt\tsyn1\t\t\trnaSeq\t[1, 2]\t\"12345\"\n" +
		"/data/b.txt\tsyn1\tB.txt\tsyn9\t\t\t\n"
	rows, err := parseManifest(strings.NewReader(tsv))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	a, b := rows[0], rows[1]
	if a.name != "a.txt" || a.parent != "syn1" || a.annotations["assay"] != "rnaSeq" || a.annotations["reps"] != "[1, 2]" || a.annotations["zip"] != "12345" || a.provenance {
		t.Errorf("row 1: got %+v", a)
	}
	if b.name != "B.txt" || len(b.annotations) != 0 || !b.provenance {
		t.Errorf("row 2: got %+v (want name B.txt, no annotations, provenance)", b)
	}
	if _, err := parseManifest(strings.NewReader("path\tname\n/a\ta\n")); err == nil {
		t.Error("a manifest without parent was accepted")
	}
}

// TestAnnotateManifest mounts synfs over the emulator, copies three files
// in, and applies a manifest with a row that matches nothing and a list
// cell: first as a dry run, then for real, then again (no change).
func TestAnnotateManifest(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	const token = "annotate-token"
	_, folder, err := em.Seed(token)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	cmd := exec.Command(binary, "mount", mnt, "--endpoint", srv.URL, "--config", "/dev/null",
		"--cache-dir", t.TempDir(), "--writeback-delay", "10ms")
	cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN="+token)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
	}()
	await(t, "the mount", func() bool { return strings.Contains(stderr.String(), "synfs: mounted") })

	src := t.TempDir()
	for _, n := range []string{"s1.fastq", "s2.fastq", "s3.fastq"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte("@"+n+"\nACGT\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(mnt, "Demo Project", "Data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "cp", "-r", src+"/.", data).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	ids := map[string]string{}
	await(t, "the uploads", func() bool {
		for _, c := range em.Children(folder) {
			ids[c.Name] = c.ID
		}
		return len(ids) == 3
	})

	manifest := filepath.Join(t.TempDir(), "manifest.tsv")
	tsv := "path\tparent\tname\tused\tassay\ttissue\treps\n" +
		fmt.Sprintf("%s/s1.fastq\t%s\t\t\trnaSeq\t[brain, \"a, b\"]\t3\n", src, folder) +
		fmt.Sprintf("%s/local-name.fq\t%s\ts2.fastq\t\trnaSeq\t\t[1, 2]\n", src, folder) +
		fmt.Sprintf("%s/s3.fastq\t%s\t\tsyn1\twgs\t\t\n", src, folder) +
		fmt.Sprintf("%s/missing.fastq\t%s\t\t\trnaSeq\t\t\n", src, folder)
	if err := os.WriteFile(manifest, []byte(tsv), 0o644); err != nil {
		t.Fatal(err)
	}
	annotate := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, binary, append([]string{"annotate", manifest, "--mount", mnt}, args...)...)
		out, err := c.Output()
		if ctx.Err() != nil {
			t.Fatal("synfs annotate did not exit within a minute")
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, string(out)
	}
	puts := func() int { return em.Stats().Requests["PUT /repo/v1/entity/{id}/annotations2"] }

	code, out := annotate("--dry-run")
	if code != 1 || !strings.Contains(out, "would set assay=rnaSeq") || !strings.Contains(out, "no match") {
		t.Errorf("dry run: exit %d, output:\n%s\nwant exit 1, would set, no match", code, out)
	}
	if n := puts(); n != 0 {
		t.Errorf("the dry run wrote annotations (%d PUTs)", n)
	}

	code, out = annotate()
	if code != 1 || !strings.Contains(out, "missing.fastq): no match") || !strings.Contains(out, "synfs does not set activities") {
		t.Errorf("annotate: exit %d, output:\n%s\nwant exit 1 for the unmatched row and the provenance note", code, out)
	}
	want := map[string]map[string][]string{
		"s1.fastq": {"assay": {"rnaSeq"}, "tissue": {"brain", "a, b"}, "reps": {"3"}},
		"s2.fastq": {"assay": {"rnaSeq"}, "reps": {"1", "2"}},
		"s3.fastq": {"assay": {"wgs"}},
	}
	for name, w := range want {
		info, _ := em.Entity(ids[name])
		for k, v := range w {
			if !slices.Equal(info.Annotations[k], v) {
				t.Errorf("%s %s: got %q, want %q", name, k, info.Annotations[k], v)
			}
		}
	}

	before := puts()
	code, out = annotate()
	if code != 1 || strings.Count(out, ": unchanged") != 3 {
		t.Errorf("second run: exit %d, output:\n%s\nwant 3 unchanged rows", code, out)
	}
	if n := puts() - before; n != 0 {
		t.Errorf("the second run wrote annotations (%d PUTs), want none", n)
	}
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
