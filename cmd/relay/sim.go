package main

import (
	"context"
	"fmt"
	"io"
)

func runSim(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "relay sim: not built yet")
	return 2
}
