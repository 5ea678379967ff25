package emulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// TestSortedChildrenStayInStep: the cached name order of a parent's
// children, kept up to date by linkLocked and unlinkLocked, is always what
// sorting the children afresh gives, through creates, renames, moves
// between parents and deletes in random order.
func TestSortedChildrenStayInStep(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := rand.New(rand.NewPCG(1, 2))
	parents := []int64{9_000_001, 9_000_002}
	var live []*entity
	next := int64(9_100_000)
	name := func() string { return fmt.Sprintf("f%03d", r.IntN(400)) }
	free := func(pid int64, n string) bool { _, ok := s.kids[pid][n]; return !ok }
	for step := range 3000 {
		switch op := r.IntN(10); {
		case op < 5 || len(live) == 0: // create
			pid, n := parents[r.IntN(2)], name()
			if !free(pid, n) {
				continue
			}
			next++
			e := &entity{ID: next, Name: n, ParentID: pid, Kind: kindFile}
			s.st.Entities[e.ID] = e
			s.linkLocked(e)
			live = append(live, e)
		case op < 8: // rename or move
			e := live[r.IntN(len(live))]
			pid, n := parents[r.IntN(2)], name()
			if !free(pid, n) {
				continue
			}
			s.unlinkLocked(e)
			e.Name, e.ParentID = n, pid
			s.linkLocked(e)
		default: // delete
			i := r.IntN(len(live))
			s.purgeLocked(live[i])
			live = slices.Delete(live, i, i+1)
		}
		for _, pid := range parents {
			if step%7 != 0 && r.IntN(3) == 0 {
				continue // leave some changes to land on a cached order
			}
			var want []string
			for n := range s.kids[pid] {
				want = append(want, n)
			}
			sort.Strings(want)
			var got []string
			for _, e := range s.childrenLocked(pid) {
				got = append(got, e.Name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d, parent %d: children in order %v, want %v", step, pid, got, want)
			}
		}
	}
}
