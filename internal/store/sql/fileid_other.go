//go:build !linux

package sql

import "os"

// fileID identifies a file (os.SameFile).
type fileID struct{ fi os.FileInfo }

func (a fileID) same(b fileID) bool { return a.fi != nil && b.fi != nil && os.SameFile(a.fi, b.fi) }

// pathID returns the identity of the file at path.
func pathID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	return fileID{fi}, err
}

// openID returns the identity of the open file f.
func openID(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	return fileID{fi}, err
}
