//go:build !linux

package loadgen

import (
	"errors"
	"time"
)

func cpuTime(int) (time.Duration, error) {
	return 0, errors.New("CPU accounting is implemented for Linux only")
}
