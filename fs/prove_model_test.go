package fs_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// The model-based test: a seeded generator of file-system operations runs
// each one on the mount (in a child process) and on a local reference
// directory, and compares every result: errno, bytes read, sizes, listings.
// At the end it closes everything, drains the uploads and compares what
// Synapse holds with the reference tree.
//
//	SYNFS_PROVE_SEED=N   replay one seed (a failure prints its seed)
//	SYNFS_PROVE_OPS=N    operations per seed (default 1500)
//	SYNFS_PROVE_SEEDS=N  seeds to run (default 2)
//	SYNFS_PROVE_HISTORY=FILE  write every operation of a failing seed to FILE
//	SYNFS_PROVE_OPEN_RENAMES=0  leave out renames and unlinks of files that
//	    are open (by default they are in, and reads, writes and fstat go on
//	    through the descriptors of a file unlinked or replaced while open)
//	SYNFS_PROVE_UPLOADS=interleaved|deferred  uploads run 50 ms after each
//	    close, among the operations (default), or only at the end

var (
	proveDirs  = []string{"d1", "d2", "d1/e"}
	proveNames = []string{"a.txt", "b.bin", "c", "d e.dat", "f(1).csv"}
	proveFlags = []int{
		os.O_WRONLY | os.O_CREATE | os.O_TRUNC,
		os.O_RDWR | os.O_CREATE,
		os.O_RDWR,
		os.O_WRONLY | os.O_CREATE | os.O_APPEND,
		os.O_RDONLY,
		os.O_RDWR | os.O_CREATE | os.O_EXCL,
	}
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestProveModel(t *testing.T) {
	requireFUSE(t)
	seeds := []uint64{}
	if s := os.Getenv("SYNFS_PROVE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SYNFS_PROVE_SEED=%q: %v", s, err)
		}
		seeds = append(seeds, n)
	} else {
		base := uint64(time.Now().UnixNano())
		for i := range envInt("SYNFS_PROVE_SEEDS", 2) {
			seeds = append(seeds, base+uint64(i))
		}
	}
	ops := envInt("SYNFS_PROVE_OPS", 1500)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("replay with SYNFS_PROVE_SEED=%d SYNFS_PROVE_OPS=%d go test -run TestProveModel ./fs/", seed, ops)
			runModel(t, seed, ops)
		})
	}
}

// model is one run: the generator's state and both trees.
type model struct {
	t       *testing.T
	rng     *rand.Rand
	seed    uint64
	e       *env
	mnt     *opChild
	ref     *opExec
	refRoot string
	open    map[int]int    // fd -> open flags
	fdPath  map[int]string // fd -> the path it was opened as
	orphans map[int]bool   // fds whose file was unlinked or replaced while open
	nextFD  int
	history []string
	counts  map[string]int

	openRenames bool // rename and unlink open files too
}

func runModel(t *testing.T, seed uint64, n int) {
	mode := os.Getenv("SYNFS_PROVE_UPLOADS")
	if mode == "" {
		mode = "interleaved"
	}
	o := envOptions{}
	if mode == "deferred" {
		o.delay = time.Hour
	}
	t.Logf("uploads %s (SYNFS_PROVE_UPLOADS)", mode)
	e := newEnv(t, o)
	m := &model{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), seed: seed, e: e,
		refRoot: t.TempDir(), open: map[int]int{}, fdPath: map[int]string{}, orphans: map[int]bool{}, nextFD: 1, counts: map[string]int{}}
	m.ref = newOpExec(m.refRoot)
	m.openRenames = os.Getenv("SYNFS_PROVE_OPEN_RENAMES") != "0"
	m.mnt = startOpChild(t, e.data, time.Minute)
	defer m.ref.closeAll()
	for i := 0; i < n; i++ {
		m.step(m.next())
	}
	for fd := range m.open {
		m.step(fsOp{Kind: "close", FD: fd})
	}
	m.compareTrees("after the operations")
	e.drain(2 * time.Minute)
	m.compareTrees("after the uploads")
	m.compareSynapse()
	t.Logf("seed %d: %d operations %v; %d files and %d folders in Synapse match the reference",
		seed, n, m.counts, m.files(), len(m.refDirs()))
}

// step runs o on both trees and fails on the first difference.
func (m *model) step(o fsOp) {
	m.t.Helper()
	want := m.ref.do(o)
	got := m.mnt.do(o)
	if o.Kind == "open" {
		m.fdPath[o.FD] = o.Path
	}
	h := o.String()
	if o.Kind != "open" && o.FD != 0 {
		h += " (opened as " + m.fdPath[o.FD] + ")"
	}
	m.history = append(m.history, h)
	m.counts[o.Kind]++
	if o.Kind == "open" && want.Errno == 0 && want.Err == "" {
		m.open[o.FD] = o.Flags
	}
	if o.Kind == "close" {
		delete(m.open, o.FD)
	}
	if (o.Kind == "unlink" || o.Kind == "rename") && want.Errno == 0 && o.Path != o.Path2 {
		gone := o.Path
		if o.Kind == "rename" {
			gone = o.Path2
		}
		for fd, p := range m.fdPath {
			if p == gone {
				m.orphans[fd] = true
			}
		}
		if o.Kind == "rename" {
			for fd, p := range m.fdPath {
				if p == o.Path && !m.orphans[fd] {
					m.fdPath[fd] = o.Path2
				}
			}
		}
	}
	if o.Kind == "open" && (got.Errno != 0 || got.Err != "") && want.Errno == 0 {
		// Keep the two sides' handle tables alike before failing.
		m.ref.do(fsOp{Kind: "close", FD: o.FD})
	}
	if diff := resultDiff(want, got); diff != "" {
		if f := os.Getenv("SYNFS_PROVE_HISTORY"); f != "" {
			os.WriteFile(f, []byte(strings.Join(m.history, "\n")+"\n"), 0o644)
		}
		h := m.history
		if len(h) > 60 {
			h = h[len(h)-60:]
		}
		m.t.Fatalf("seed %d, op %d: %v: %s\nlast operations:\n  %s\nreplay: SYNFS_PROVE_SEED=%d go test -run TestProveModel ./fs/",
			m.seed, len(m.history), o, diff, strings.Join(h, "\n  "), m.seed)
	}
}

func resultDiff(want, got fsResult) string {
	switch {
	case want.Errno != got.Errno || want.Err != got.Err:
		return fmt.Sprintf("error: reference %s, mount %s", errText(want), errText(got))
	case want.N != got.N:
		return fmt.Sprintf("count: reference %d, mount %d", want.N, got.N)
	case !bytes.Equal(want.Data, got.Data):
		i := firstDiff(want.Data, got.Data)
		return fmt.Sprintf("bytes: reference %d bytes (md5 %s), mount %d bytes (md5 %s), first difference at %d: reference %x, mount %x; %d bytes differ",
			len(want.Data), md5hex(want.Data), len(got.Data), md5hex(got.Data), i,
			want.Data[i:min(i+12, len(want.Data))], got.Data[i:min(i+12, len(got.Data))], countDiff(want.Data, got.Data))
	case want.Size != got.Size || want.Dir != got.Dir:
		return fmt.Sprintf("stat: reference size %d dir %v, mount size %d dir %v", want.Size, want.Dir, got.Size, got.Dir)
	case strings.Join(want.Names, "|") != strings.Join(got.Names, "|"):
		return fmt.Sprintf("listing: reference %q, mount %q", want.Names, got.Names)
	}
	return ""
}

func errText(r fsResult) string {
	switch {
	case r.Errno != 0:
		return fmt.Sprintf("%v (%d)", syscall.Errno(r.Errno), r.Errno)
	case r.Err != "":
		return r.Err
	}
	return "success"
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func (m *model) pick(s []string) string { return s[m.rng.IntN(len(s))] }

func (m *model) filePath() string {
	dir := []string{"", "", "d1", "d2", "d1/e"}[m.rng.IntN(5)]
	return path.Join(dir, m.pick(proveNames))
}

func (m *model) refSize(p string) int64 {
	st, err := os.Stat(filepath.Join(m.refRoot, p))
	if err != nil {
		return 0
	}
	return st.Size()
}

// busy reports whether p is open and renames and unlinks of open files are
// left out (SYNFS_PROVE_OPEN_RENAMES=0).
func (m *model) busy(p string) bool {
	if m.openRenames {
		return false
	}
	for fd := range m.open {
		if m.fdPath[fd] == p {
			return true
		}
	}
	return false
}

func (m *model) anyFD() (int, int, bool) {
	if len(m.open) == 0 {
		return 0, 0, false
	}
	fds := make([]int, 0, len(m.open))
	for fd := range m.open {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	fd := fds[m.rng.IntN(len(fds))]
	return fd, m.open[fd], true
}

// fdSize is the size of the file behind fd in the reference.
func (m *model) fdSize(fd int) int64 {
	st, err := m.ref.fds[fd].Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

func (m *model) writeLen() int64 {
	switch r := m.rng.IntN(100); {
	case r < 5:
		return 1<<20 + m.rng.Int64N(1<<20) // crosses the cache's 1 MiB chunks
	case r < 30:
		return 1 + m.rng.Int64N(64<<10)
	default:
		return 1 + m.rng.Int64N(4<<10)
	}
}

// next draws the next operation.
func (m *model) next() fsOp {
	for {
		switch r := m.rng.IntN(100); {
		case r < 15:
			if len(m.open) >= 4 {
				continue
			}
			fd := m.nextFD
			m.nextFD++
			return fsOp{Kind: "open", Path: m.filePath(), Flags: proveFlags[m.rng.IntN(len(proveFlags))], FD: fd}
		case r < 38:
			fd, flags, ok := m.anyFD()
			if !ok {
				continue
			}
			o := fsOp{Kind: "write", FD: fd, N: m.writeLen(), Seed: 1 + m.rng.Int64N(250)}
			if flags&os.O_APPEND != 0 || m.rng.IntN(4) == 0 {
				o.Off = -1
			} else {
				o.Off = m.rng.Int64N(m.fdSize(fd) + 8<<10)
			}
			return o
		case r < 44:
			fd, _, ok := m.anyFD()
			if !ok {
				continue
			}
			return fsOp{Kind: "read", FD: fd, Off: m.rng.Int64N(m.fdSize(fd) + 16), N: 1 + m.rng.Int64N(128<<10)}
		case r < 46:
			fd, _, ok := m.anyFD()
			if !ok {
				continue
			}
			return fsOp{Kind: "fstat", FD: fd} // size and link count (0 once unlinked)
		case r < 58:
			fd, _, ok := m.anyFD()
			if !ok {
				continue
			}
			return fsOp{Kind: "close", FD: fd}
		case r < 61:
			fd, _, ok := m.anyFD()
			if !ok {
				continue
			}
			return fsOp{Kind: "ftruncate", FD: fd, N: m.rng.Int64N(m.fdSize(fd) + 5000)}
		case r < 64:
			p := m.filePath()
			return fsOp{Kind: "truncate", Path: p, N: m.rng.Int64N(m.refSize(p) + 5000)}
		case r < 71:
			o := fsOp{Kind: "rename", Path: m.filePath(), Path2: m.filePath()}
			if m.busy(o.Path) || m.busy(o.Path2) {
				continue
			}
			return o
		case r < 77:
			o := fsOp{Kind: "unlink", Path: m.filePath()}
			if m.busy(o.Path) {
				continue
			}
			return o
		case r < 80:
			return fsOp{Kind: "mkdir", Path: m.pick(proveDirs)}
		case r < 83:
			return fsOp{Kind: "rmdir", Path: m.pick(proveDirs)}
		case r < 89:
			return fsOp{Kind: "readdir", Path: m.pick(append([]string{"", ""}, proveDirs...))}
		case r < 94:
			return fsOp{Kind: "stat", Path: m.filePath()}
		default:
			return fsOp{Kind: "readfile", Path: m.filePath()}
		}
	}
}

func (m *model) refDirs() []string {
	var dirs []string
	filepath.WalkDir(m.refRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			rel, _ := filepath.Rel(m.refRoot, p)
			dirs = append(dirs, rel)
		}
		return nil
	})
	return dirs
}

func (m *model) files() int {
	n := 0
	filepath.WalkDir(m.refRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// compareTrees lists every folder and reads every file on both sides.
func (m *model) compareTrees(when string) {
	m.t.Helper()
	for _, dir := range m.refDirs() {
		if dir == "." {
			dir = ""
		}
		o := fsOp{Kind: "readdir", Path: dir}
		want, got := m.ref.do(o), m.mnt.do(o)
		if diff := resultDiff(want, got); diff != "" {
			m.t.Fatalf("seed %d, %s: %v: %s", m.seed, when, o, diff)
		}
		for _, name := range want.Names {
			if strings.HasSuffix(name, "/") {
				continue
			}
			o := fsOp{Kind: "readfile", Path: path.Join(dir, name[:strings.LastIndexByte(name, ' ')])}
			want, got := m.ref.do(o), m.mnt.do(o)
			if diff := resultDiff(want, got); diff != "" {
				m.t.Fatalf("seed %d, %s: %v: %s", m.seed, when, o, diff)
			}
		}
	}
}

// compareSynapse checks that Synapse holds the reference tree: one folder
// per folder, one file entity per non-empty file with the reference's MD5
// as its current version, nothing else. Empty files stay local (Synapse
// refuses them); one that was uploaded before it was emptied keeps its
// entity.
func (m *model) compareSynapse() {
	m.t.Helper()
	remote := map[string]emulator.EntityInfo{}
	var walk func(id, prefix string)
	walk = func(id, prefix string) {
		for _, c := range m.e.em.Children(id) {
			p := path.Join(prefix, c.Name)
			if _, dup := remote[p]; dup {
				m.t.Errorf("seed %d: two entities named %s in Synapse", m.seed, p)
			}
			remote[p] = c
			if c.Kind == "folder" {
				walk(c.ID, p)
			}
		}
	}
	walk(m.e.folder, "")
	filepath.WalkDir(m.refRoot, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(m.refRoot, p)
		if err != nil || rel == "." {
			return nil
		}
		ent, ok := remote[rel]
		delete(remote, rel)
		if d.IsDir() {
			if !ok || ent.Kind != "folder" {
				m.t.Errorf("seed %d: folder %s: not a folder in Synapse (%+v)", m.seed, rel, ent)
			}
			return nil
		}
		b, _ := os.ReadFile(p)
		switch {
		case len(b) == 0:
		case !ok || ent.Kind != "file":
			m.t.Errorf("seed %d: file %s (%d bytes) is not in Synapse", m.seed, rel, len(b))
		case ent.Versions[len(ent.Versions)-1].MD5 != md5hex(b):
			v := ent.Versions[len(ent.Versions)-1]
			m.t.Errorf("seed %d: file %s: Synapse holds %d bytes md5 %s (version %d), the reference %d bytes md5 %s",
				m.seed, rel, v.Size, v.MD5, v.Number, len(b), md5hex(b))
		}
		return nil
	})
	for p, ent := range remote {
		m.t.Errorf("seed %d: Synapse holds %s %s (%s), which the reference does not have", m.seed, ent.Kind, p, ent.ID)
	}
}
