//go:build !unix

package sim

import "time"

func processCPU() time.Duration { return 0 }
