package main

import (
	"context"
	"fmt"
	"io"
)

func runReplay(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "relay replay: not built yet")
	return 2
}
