package fs

import (
	"testing"

	"github.com/synfs/synfs/remote"
)

// A mkdir that stopped waiting for its create owns a folder found in the
// name's place while that create runs, or the one it made; not one found
// after its create failed, and never while it only shared another mkdir's.
func TestFolderCreateOurs(t *testing.T) {
	folder := &remote.Entity{ID: "syn7", Kind: remote.KindFolder}
	running := &flight{done: make(chan struct{})}
	over := &flight{done: make(chan struct{})}
	close(over.done)
	made := &folderCreate{f: over, mine: true}
	made.got.Store(&remote.Entity{ID: "syn7", Kind: remote.KindFolder})
	other := &folderCreate{f: over, mine: true}
	other.got.Store(&remote.Entity{ID: "syn8", Kind: remote.KindFolder})
	for _, c := range []struct {
		what string
		c    *folderCreate
		e    *remote.Entity
		want bool
	}{
		{"no create sent", nil, folder, false},
		{"create running", &folderCreate{f: running, mine: true}, folder, true},
		{"create running, a file found", &folderCreate{f: running, mine: true}, &remote.Entity{ID: "syn7", Kind: remote.KindFile}, false},
		{"another mkdir's create", &folderCreate{f: running}, folder, false},
		{"create failed", &folderCreate{f: over, mine: true}, folder, false},
		{"create made it", made, folder, true},
		{"create made another", other, folder, false},
	} {
		if got := c.c.ours(c.e); got != c.want {
			t.Errorf("%s: ours = %v, want %v", c.what, got, c.want)
		}
	}
}
