//go:build !unix

package store_test

import (
	"testing"
	"time"
)

// cpuTime is unavailable here; the cpu-µs/entry metric reads 0.
func cpuTime(testing.TB) time.Duration { return 0 }
