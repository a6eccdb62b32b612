//go:build unix

package gateway

import (
	"net"
	"syscall"
)

// stillOpen reports whether an idle connection can carry a request: the
// upstream has neither closed it nor sent anything unasked (a peek that
// does not wait finds nothing to read).
func stillOpen(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	if err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for the descriptor
	}); err != nil {
		return false
	}
	return open
}
