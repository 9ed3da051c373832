package main

import (
	"context"
	"fmt"
	"io"
)

func runServe(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "relay serve: not built yet")
	return 2
}
