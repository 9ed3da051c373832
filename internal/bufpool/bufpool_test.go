package bufpool

import "testing"

func TestSlices(t *testing.T) {
	var p Slices[*int]
	p.MaxBytes = 64 // eight pointers
	x := 1
	s := make([]*int, 2, 8)
	s[0], s[1] = &x, &x
	p.Put(s)
	got := p.Get()
	// sync.Pool may drop what it holds (a GC), so only a slice that came
	// back is checked: empty, and cleared.
	if got != nil {
		if len(got) != 0 || cap(got) != 8 {
			t.Fatalf("got len %d cap %d, want an empty slice of capacity 8", len(got), cap(got))
		}
		if got[:2][0] != nil || got[:2][1] != nil {
			t.Error("a pooled slice still points to its old elements")
		}
	}
	p.Put(make([]*int, 0, 9)) // over MaxBytes: not kept
	if got := p.Get(); got != nil {
		t.Errorf("a slice over MaxBytes came back (cap %d)", cap(got))
	}
	var unset Slices[byte]
	unset.Put(make([]byte, 10))
	if got := unset.Get(); got != nil {
		t.Error("the zero value kept a slice")
	}
}
