//go:build linux

package sql

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// faultVFS is a SQLite VFS for tests that wraps SQLite's own "unix" VFS:
// every call goes to it, but writes, syncs, truncations and deletions of
// the files it opens pass through Go on the way, where the test can
// (1) make one fail, and (2) see which bytes reached stable storage: a
// write counts as durable only once a sync of its file follows it.
//
// While installed (installFaultVFS) it is SQLite's default VFS, so that
// Open uses it without a seam in the production code.
//
// How it is built: the transpiled SQLite (modernc.org/sqlite/lib) keeps
// C structs in libc memory and a C function pointer as a uintptr holding a
// Go func value, which it calls through
// *(*func(...))(unsafe.Pointer(&ptr)). The VFS struct is a copy of unix's
// with its own name and xOpen and xDelete. xOpen lets unix open the file,
// then points the file's pMethods at a copy of unix's method table whose
// xWrite, xSync, xTruncate and xClose are Go functions that call unix's.
type faultVFS struct {
	tls  *libc.TLS
	unix uintptr // SQLite's unix VFS
	vfs  uintptr // this VFS, in libc memory

	// Go funcs referenced only from libc memory: kept here so that the
	// garbage collector keeps them.
	funcs []any

	mu     sync.Mutex
	tables map[uintptr]uintptr    // unix's io_methods -> the wrapped copy
	unixIO map[uintptr]*unixFuncs // wrapped copy -> unix's functions
	open   map[uintptr]*vfsFile   // open sqlite3_file -> the file's state
	files  map[string]*vfsFile    // path -> state, for files under dir
	dir    string                 // only files in dir are followed
	fault  *fault                 // the next call to fail, if any

	// beforeSync, if set, is called (without mu) as a sync of a followed
	// file starts.
	beforeSync func(path string)
}

// unixFuncs are unix's methods that the wrapped table replaces.
type unixFuncs struct{ write, sync, truncate, close uintptr }

// vfsFile is what the test knows of one file.
type vfsFile struct {
	path    string
	durable []byte      // the contents as of its last sync
	pending []pendingOp // writes and truncations since, in order
	seq     int64       // of the last pendingOp
}

// pendingOp is a write (data at off) or, with data nil, a truncation to
// off bytes.
type pendingOp struct {
	seq  int64
	off  int64
	data []byte
}

// fault is one call to fail.
type fault struct {
	op     string // "write" (of a page) or "sync" (making a page durable)
	suffix string // of the file's path
	rc     int32  // the result code to return
	hit    bool
}

// installFaultVFS registers a faultVFS as SQLite's default VFS for the
// rest of the test, following the files in dir. The test's databases must
// be closed before it ends (openTemp's cleanup, registered later, runs
// first).
func installFaultVFS(t *testing.T, dir string) *faultVFS {
	t.Helper()
	tls := libc.NewTLS()
	v := &faultVFS{
		tls:    tls,
		tables: map[uintptr]uintptr{},
		unixIO: map[uintptr]*unixFuncs{},
		open:   map[uintptr]*vfsFile{},
		files:  map[string]*vfsFile{},
		dir:    dir,
	}
	name, err := libc.CString("mcpauth-fault")
	if err != nil {
		t.Fatal(err)
	}
	unixName, err := libc.CString("unix")
	if err != nil {
		t.Fatal(err)
	}
	defer libc.Xfree(tls, unixName)
	v.unix = sqlite3.Xsqlite3_vfs_find(tls, unixName)
	if v.unix == 0 {
		t.Fatal("SQLite has no unix VFS")
	}
	v.vfs = libc.Xcalloc(tls, 1, types.Size_t(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	vfs := (*sqlite3.Tsqlite3_vfs)(ptr(v.vfs))
	*vfs = *(*sqlite3.Tsqlite3_vfs)(ptr(v.unix))
	vfs.FpNext = 0
	vfs.FzName = name
	vfs.FxOpen = v.cfunc(v.xOpen)
	vfs.FxDelete = v.cfunc(v.xDelete)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, v.vfs, 1); rc != sqlite3.SQLITE_OK {
		t.Fatalf("sqlite3_vfs_register: %d", rc)
	}
	t.Cleanup(func() {
		sqlite3.Xsqlite3_vfs_unregister(tls, v.vfs)
		v.mu.Lock()
		defer v.mu.Unlock()
		if len(v.open) > 0 {
			// Freeing now would leave those files with dangling methods.
			t.Errorf("fault VFS: %d files still open at the end of the test", len(v.open))
			return
		}
		for _, p := range v.tables {
			libc.Xfree(tls, p)
		}
		libc.Xfree(tls, v.vfs)
		libc.Xfree(tls, name)
		tls.Close()
	})
	return v
}

// ptr turns an address in libc memory into a pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// cfunc returns f as a C function pointer of the transpiled SQLite and
// keeps f alive as long as v.
func (v *faultVFS) cfunc(f any) uintptr {
	v.funcs = append(v.funcs, f)
	switch f := f.(type) {
	case func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32: // xOpen
		return *(*uintptr)(unsafe.Pointer(&f))
	case func(*libc.TLS, uintptr, uintptr, int32) int32: // xDelete
		return *(*uintptr)(unsafe.Pointer(&f))
	case func(*libc.TLS, uintptr, uintptr, int32, int64) int32: // xWrite
		return *(*uintptr)(unsafe.Pointer(&f))
	case func(*libc.TLS, uintptr, int32) int32: // xSync
		return *(*uintptr)(unsafe.Pointer(&f))
	case func(*libc.TLS, uintptr, int64) int32: // xTruncate
		return *(*uintptr)(unsafe.Pointer(&f))
	case func(*libc.TLS, uintptr) int32: // xClose
		return *(*uintptr)(unsafe.Pointer(&f))
	}
	panic("cfunc: unexpected signature")
}

func (v *faultVFS) xOpen(tls *libc.TLS, _ uintptr, zName uintptr, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	unixOpen := (*sqlite3.Tsqlite3_vfs)(ptr(v.unix)).FxOpen
	rc := (*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&unixOpen)))(tls, v.unix, zName, pFile, flags, pOutFlags)
	file := (*sqlite3.Tsqlite3_file)(ptr(pFile))
	if rc != sqlite3.SQLITE_OK || file.FpMethods == 0 || zName == 0 {
		return rc
	}
	path := libc.GoString(zName)
	if filepath.Dir(path) != v.dir {
		return rc
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	wrapped, ok := v.tables[file.FpMethods]
	if !ok {
		orig := (*sqlite3.Tsqlite3_io_methods)(ptr(file.FpMethods))
		wrapped = libc.Xcalloc(v.tls, 1, types.Size_t(unsafe.Sizeof(*orig)))
		m := (*sqlite3.Tsqlite3_io_methods)(ptr(wrapped))
		*m = *orig
		m.FxWrite = v.cfunc(v.xWrite)
		m.FxSync = v.cfunc(v.xSync)
		m.FxTruncate = v.cfunc(v.xTruncate)
		m.FxClose = v.cfunc(v.xClose)
		v.tables[file.FpMethods] = wrapped
		v.unixIO[wrapped] = &unixFuncs{write: orig.FxWrite, sync: orig.FxSync, truncate: orig.FxTruncate, close: orig.FxClose}
	}
	file.FpMethods = wrapped
	f := v.files[path]
	if f == nil {
		// What is on disk when SQLite first opens the file is taken as
		// durable: the test's files start empty or closed cleanly.
		durable, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return sqlite3.SQLITE_IOERR
		}
		f = &vfsFile{path: path, durable: durable}
		v.files[path] = f
	}
	v.open[pFile] = f
	return rc
}

func (v *faultVFS) xDelete(tls *libc.TLS, _ uintptr, zName uintptr, syncDir int32) int32 {
	unixDelete := (*sqlite3.Tsqlite3_vfs)(ptr(v.unix)).FxDelete
	rc := (*(*func(*libc.TLS, uintptr, uintptr, int32) int32)(unsafe.Pointer(&unixDelete)))(tls, v.unix, zName, syncDir)
	if rc == sqlite3.SQLITE_OK {
		v.mu.Lock()
		delete(v.files, libc.GoString(zName)) // taken as durable at once
		v.mu.Unlock()
	}
	return rc
}

// unixFor returns unix's methods for the open file pFile.
func (v *faultVFS) unixFor(pFile uintptr) *unixFuncs {
	return v.unixIO[(*sqlite3.Tsqlite3_file)(ptr(pFile)).FpMethods]
}

// hits reports whether the armed fault fails a call op on f (when the
// call matches the fault's kind), and disarms it if so. v.mu is held.
func (v *faultVFS) hits(op string, f *vfsFile, matches bool) (int32, bool) {
	fl := v.fault
	if fl == nil || fl.op != op || !matches || f == nil || !strings.HasSuffix(f.path, fl.suffix) {
		return 0, false
	}
	fl.hit = true
	v.fault = nil
	return fl.rc, true
}

func (v *faultVFS) xWrite(tls *libc.TLS, pFile uintptr, buf uintptr, amt int32, off int64) int32 {
	v.mu.Lock()
	u := v.unixFor(pFile)
	f := v.open[pFile]
	rc, failed := v.hits("write", f, amt >= 512) // a page, not a header
	if !failed {
		rc = (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&u.write)))(tls, pFile, buf, amt, off)
		if f != nil && rc == sqlite3.SQLITE_OK {
			f.seq++
			f.pending = append(f.pending, pendingOp{seq: f.seq, off: off, data: slices.Clone(unsafe.Slice((*byte)(ptr(buf)), amt))})
		}
	}
	v.mu.Unlock()
	return rc
}

func (v *faultVFS) xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	v.mu.Lock()
	u := v.unixFor(pFile)
	f := v.open[pFile]
	framesPending := f != nil && slices.ContainsFunc(f.pending, func(p pendingOp) bool { return p.off >= 32 })
	rc, failed := v.hits("sync", f, framesPending)
	var upTo int64 // what this sync makes durable
	if f != nil {
		upTo = f.seq
	}
	hook := v.beforeSync
	v.mu.Unlock()
	if failed {
		return rc
	}
	if hook != nil && f != nil {
		hook(f.path)
	}
	// The lock is not held while the disk flushes, so that a power loss
	// can be taken meanwhile; writes that arrive during the sync are not
	// counted as synced by it.
	rc = (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&u.sync)))(tls, pFile, flags)
	if f != nil && rc == sqlite3.SQLITE_OK {
		v.mu.Lock()
		// fsync flushes the file, whichever descriptor wrote to it.
		n := 0
		for n < len(f.pending) && f.pending[n].seq <= upTo {
			f.durable = f.pending[n].apply(f.durable)
			n++
		}
		f.pending = f.pending[n:]
		v.mu.Unlock()
	}
	return rc
}

func (v *faultVFS) xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	u := v.unixFor(pFile)
	rc := (*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&u.truncate)))(tls, pFile, size)
	if f := v.open[pFile]; f != nil && rc == sqlite3.SQLITE_OK {
		f.seq++
		f.pending = append(f.pending, pendingOp{seq: f.seq, off: size})
	}
	return rc
}

func (v *faultVFS) xClose(tls *libc.TLS, pFile uintptr) int32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	u := v.unixFor(pFile)
	delete(v.open, pFile)
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&u.close)))(tls, pFile)
}

// apply returns contents after p.
func (p pendingOp) apply(contents []byte) []byte {
	if p.data == nil {
		if int64(len(contents)) > p.off {
			return contents[:p.off]
		}
		return append(contents, make([]byte, p.off-int64(len(contents)))...)
	}
	if end := p.off + int64(len(p.data)); end > int64(len(contents)) {
		contents = append(contents, make([]byte, end-int64(len(contents)))...)
	}
	copy(contents[p.off:], p.data)
	return contents
}

// failNext makes the next call op ("write" of a page, or "sync" that would
// make a written page durable) on the file whose path ends in suffix fail
// with rc, without reaching the disk.
func (v *faultVFS) failNext(op, suffix string, rc int32) *fault {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fault = &fault{op: op, suffix: suffix, rc: rc}
	return v.fault
}

// hit reports whether the fault has happened.
func (v *faultVFS) hit(f *fault) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return f.hit
}

// image is a copy of the followed files: base name -> contents.
type image map[string][]byte

// powerLoss returns what the followed files would hold after a power
// loss now that keeps nothing unsynced: each file's contents as of its
// last sync. unsynced is how many files had writes that are lost.
func (v *faultVFS) powerLoss() (img image, unsynced int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	img = image{}
	for p, f := range v.files {
		img[filepath.Base(p)] = slices.Clone(f.durable)
		if len(f.pending) > 0 {
			unsynced++
		}
	}
	return img, unsynced
}

// processDeath returns what the followed files hold now, written or
// synced: what a restart finds after the process died but the machine did
// not.
func (v *faultVFS) processDeath(t *testing.T) image {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	img := image{}
	for p := range v.files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		img[filepath.Base(p)] = b
	}
	return img
}

// restore writes img into a new directory and returns the path of the
// database file in it. No -shm file is written: after a restart SQLite
// rebuilds the log's index from the log itself.
func (img image) restore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range img {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "mcpauth.db")
}
