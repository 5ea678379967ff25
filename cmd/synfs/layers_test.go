package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers enforces the import rules of docs/design.md on non-test code.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "github.com/synfs/synfs/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/synfs/synfs"
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, ":")
		imports[strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")] = strings.Fields(deps)
	}
	std := func(p string) bool { return !strings.Contains(strings.Split(p, "/")[0], ".") }
	for pkg, deps := range imports {
		for _, d := range deps {
			switch {
			case pkg == "remote" && !std(d):
				t.Errorf("remote imports %s: it may import only the standard library", d)
			case pkg == "control" && !std(d):
				t.Errorf("control imports %s: it may import only the standard library", d)
			case pkg == "cache/writeback" && !std(d):
				t.Errorf("cache/writeback imports %s: it may import only the standard library", d)
			case strings.HasPrefix(d, "github.com/dgraph-io/badger") && pkg != "cache":
				t.Errorf("%s imports badger: only cache may", pkg)
			case strings.HasPrefix(d, "github.com/hashicorp/golang-lru") && pkg != "cache/meta" && pkg != "cache/blocks":
				t.Errorf("%s imports golang-lru: only cache/meta and cache/blocks may", pkg)
			case strings.HasPrefix(d, "bazil.org/fuse") && pkg != "fs" && pkg != "cmd/synfs":
				t.Errorf("%s imports %s: only fs and cmd/synfs may", pkg, d)
			case pkg == "fs" && (d == mod+"/remote/synapse" || d == mod+"/remote/emulator"):
				t.Errorf("fs imports %s: it reaches Synapse only through remote.Client", d)
			case strings.HasPrefix(pkg, "cache") && strings.HasPrefix(d, mod+"/remote/"):
				t.Errorf("%s imports %s: the cache reaches Synapse only through remote.Client", pkg, d)
			}
		}
	}
	if len(imports) < 8 {
		t.Fatalf("got %d packages from go list, want the whole module", len(imports))
	}
}
