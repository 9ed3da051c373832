package corpus

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMatchesNode runs the copied generator script and compares its output
// with the port, byte for byte. It is skipped when node is not installed.
func TestMatchesNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	const n = 3000
	out := filepath.Join(t.TempDir(), "corpus.json")
	cmd := exec.Command(node, filepath.Join("..", "gen-corpus.js"), "3000", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-corpus.js: %v\n%s", err, msg)
	}
	want := mustRead(t, out)
	got := Array(n)
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		lo := max(i-200, 0)
		t.Fatalf("differs at byte %d:\n got …%s\nwant …%s", i, got[lo:min(i+100, len(got))], want[lo:min(i+100, len(want))])
	}
}

// TestMix checks the documented proportions and that every event is valid
// JSON with a unique messageId.
func TestMix(t *testing.T) {
	evs, kinds := Events(20000)
	count := map[Kind]int{}
	ids := map[string]bool{}
	for i, e := range evs {
		var v struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(e, &v); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ids[v.MessageID] {
			t.Fatalf("event %d: messageId %s repeated", i, v.MessageID)
		}
		ids[v.MessageID] = true
		count[kinds[i]]++
	}
	for k, want := range map[Kind]float64{Identify: 0.3, Track: 0.6, Order: 0.1} {
		if got := float64(count[k]) / float64(len(evs)); got < want-0.02 || got > want+0.02 {
			t.Errorf("kind %d: %.3f of the corpus, want about %.2f", k, got, want)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	g := New()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = g.Next(buf[:0])
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
