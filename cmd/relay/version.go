package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Stamped by `make release` with -ldflags "-X main.version=… -X
// main.commit=… -X main.buildDate=…"; a plain `go build` leaves the
// defaults, and commit then comes from the build's VCS stamp if any.
var (
	commit    = ""
	buildDate = "unknown"
)

func runVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprint(stdout, versionText())
	return 0
}

func versionText() string {
	c := commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("relay %s\ncommit: %s\ngo: %s %s/%s\nbuilt: %s\n",
		version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH, buildDate)
}
