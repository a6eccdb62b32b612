package sql

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileID identifies a file by its device and inode number.
//
// It is read with statx asking for the inode number alone. A stat that
// asks for timestamps (os.Stat, fstat) marks them as seen, and from Linux
// 6.13 (multi-grain timestamps) the next write then stamps the file with a
// fine-grained time, which dirties the inode: the following fdatasync has
// to write the inode's block too, one more round trip to the disk on every
// sync. Measured here, that cost 10-15 % of the token endpoint's
// throughput at 8 clients (README, "Where the time goes").
type fileID struct {
	major, minor uint32
	ino          uint64
}

func (a fileID) same(b fileID) bool { return a == b }

// pathID returns the identity of the file at path.
func pathID(path string) (fileID, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_INO, &st); err != nil {
		return fileID{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	return fileID{st.Dev_major, st.Dev_minor, st.Ino}, nil
}

// openID returns the identity of the open file f.
func openID(f *os.File) (fileID, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return fileID{}, err
	}
	var st unix.Statx_t
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.Statx(int(fd), "", unix.AT_EMPTY_PATH, unix.STATX_INO, &st)
	}); err != nil {
		return fileID{}, err
	}
	if serr != nil {
		return fileID{}, &os.PathError{Op: "statx", Path: f.Name(), Err: serr}
	}
	return fileID{st.Dev_major, st.Dev_minor, st.Ino}, nil
}
