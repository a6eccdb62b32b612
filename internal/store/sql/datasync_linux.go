package sql

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the metadata needed to read it back) to
// stable storage, as SQLite itself does on Linux.
func datasync(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
