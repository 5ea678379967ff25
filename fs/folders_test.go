package fs_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// Staged folders racing their creates in Synapse: a create whose answer is
// held back (a stall fault: Synapse has handled it) while the mount
// removes the folder, or answers mkdir first.

// rmdir of a staged folder whose create is in flight: Synapse makes the
// folder, but its answer is held back (stall). rmdir must not take the
// folder for never created: it waits for the create, then removes what it
// made, so that Synapse holds no folder the mount removed and the name is
// free for a new mkdir.
func TestStagedFolderRemovedWhileItsCreateIsInFlight(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := xReadDir(t, e.data); err != nil {
		t.Fatal(err)
	}
	downServer(t, e.srv)
	waitFor(t, 10*time.Second, "the mount to see Synapse stopped", func() bool {
		xStat(t, filepath.Join(e.data, "nowhere-seen"))
		return !e.conn.Online()
	})
	d1 := filepath.Join(e.data, "d1")
	if _, err := quick(t, time.Second, "mkdir offline", "mkdir", d1, ""); err != nil {
		t.Fatalf("mkdir offline: %v", err)
	}
	staged := e.fl.Folders()
	if len(staged) != 1 {
		t.Fatalf("staged folders: %+v, want d1", staged)
	}
	f, err := emulator.ParseFault("POST /repo/v1/entity:stall=2s:n=1")
	if err != nil {
		t.Fatal(err)
	}
	e.em.AddFault(f)
	upServer(t, e.srv)
	waitFor(t, 20*time.Second, "the folder's create to be sent", func() bool {
		fo, err := e.store.Folder(staged[0].Ino)
		return err == nil && fo.SentParent != ""
	})
	if _, err := quick(t, 10*time.Second, "rmdir while the create is in flight", "remove", d1, ""); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	e.drain(time.Minute)
	for _, c := range e.em.Children(e.folder) {
		if c.Name == "d1" {
			t.Fatalf("d1 (%s) is in Synapse after the mount removed it", c.ID)
		}
	}
	if _, err := quick(t, 5*time.Second, "mkdir of the name again", "mkdir", d1, ""); err != nil {
		t.Fatalf("mkdir d1 again: %v", err)
	}
	waitFor(t, 20*time.Second, "d1 created again", func() bool {
		n := 0
		for _, c := range e.em.Children(e.folder) {
			if c.Name == "d1" {
				n++
			}
		}
		return n == 1 && len(e.fl.Folders()) == 0
	})
}

// mkdir on a slow Synapse: the create is handled at once but its answer is
// held back past the bound (stall), so mkdir answers before it does.
func TestSlowMkdir(t *testing.T) {
	stall := func(t *testing.T, e *env, n int) {
		f, err := emulator.ParseFault("POST /repo/v1/entity:stall=2s:n=" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		e.em.AddFault(f)
	}
	count := func(e *env, name string) int {
		n := 0
		for _, c := range e.em.Children(e.folder) {
			if c.Name == name {
				n++
			}
		}
		return n
	}
	// The listing mkdir reads after the bound already shows the folder its
	// own create made: that is mkdir's folder, not EEXIST.
	t.Run("found-after-the-bound", func(t *testing.T) {
		e := newEnv(t, envOptions{remoteWait: 300 * time.Millisecond, metaTTL: time.Millisecond})
		if _, err := xReadDir(t, e.data); err != nil {
			t.Fatal(err)
		}
		stall(t, e, 1)
		if _, err := quick(t, 1500*time.Millisecond, "mkdir on a slow Synapse", "mkdir", filepath.Join(e.data, "d1"), ""); err != nil {
			t.Fatalf("mkdir: %v", err)
		}
		e.drain(time.Minute)
		waitFor(t, 20*time.Second, "no staged folder left", func() bool { return len(e.fl.Folders()) == 0 })
		if n := count(e, "d1"); n != 1 {
			t.Errorf("%d folders d1 in Synapse, want 1", n)
		}
	})
	// The folder is staged while its create goes on, and the flusher's
	// create of the staged folder is held back too; rmdir comes before
	// either answer. It must wait for them and remove what they made, so
	// that the name is free again.
	t.Run("staged-then-removed", func(t *testing.T) {
		e := newEnv(t, envOptions{remoteWait: 300 * time.Millisecond, metaTTL: time.Minute})
		if _, err := xReadDir(t, e.data); err != nil {
			t.Fatal(err)
		}
		stall(t, e, 2)
		d1 := filepath.Join(e.data, "d1")
		if _, err := quick(t, 1500*time.Millisecond, "mkdir on a slow Synapse", "mkdir", d1, ""); err != nil {
			t.Fatalf("mkdir: %v", err)
		}
		if fos := e.fl.Folders(); len(fos) != 1 || fos[0].SentParent != e.folder {
			t.Fatalf("staged folders %+v: want d1, with its create recorded as sent to %s", fos, e.folder)
		}
		if _, err := quick(t, 10*time.Second, "rmdir while the create's answer is held", "remove", d1, ""); err != nil {
			t.Fatalf("rmdir: %v", err)
		}
		e.drain(time.Minute)
		if n := count(e, "d1"); n != 0 {
			t.Fatalf("%d folders d1 in Synapse after the mount removed it", n)
		}
		if _, err := quick(t, 5*time.Second, "mkdir of the name again", "mkdir", d1, ""); err != nil {
			t.Fatalf("mkdir d1 again: %v", err)
		}
		waitFor(t, 20*time.Second, "d1 made again, once", func() bool { return count(e, "d1") == 1 && len(e.fl.Folders()) == 0 })
	})
}
