package main

import (
	"context"
	"fmt"
	"io"
)

func runTransform(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "relay transform: not built yet")
	return 2
}
