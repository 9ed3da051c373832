package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestMaxBatchEvents: a batch or array over MaxBatchEvents elements is
// malformed as a whole (and is refused before its elements cost memory);
// one at the limit is parsed.
func TestMaxBatchEvents(t *testing.T) {
	elems := func(n int, e string) string { return strings.TrimSuffix(strings.Repeat(e+",", n), ",") }
	ev := `{"type":"track","event":"E","userId":"u"}`
	cases := []struct {
		name  string
		body  string
		items int // 0: want ErrMalformed
	}{
		{"batch at the limit", `{"batch":[` + elems(MaxBatchEvents, ev) + `]}`, MaxBatchEvents},
		{"array at the limit", `[` + elems(MaxBatchEvents, ev) + `]`, MaxBatchEvents},
		{"batch over the limit", `{"batch":[` + elems(MaxBatchEvents+1, ev) + `]}`, 0},
		{"bare numbers over the limit", `{"batch":[` + elems(1<<20, "0") + `]}`, 0},
		{"array over the limit", `[` + elems(MaxBatchEvents+1, "{}") + `]`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.body), Options{})
			if tc.items == 0 {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "more than 10000 events") {
					t.Fatalf("err %v, want ErrMalformed naming the limit", err)
				}
				return
			}
			if err != nil || len(b.Items) != tc.items {
				t.Fatalf("err %v, %d items, want %d", err, len(b.Items), tc.items)
			}
		})
	}
}
