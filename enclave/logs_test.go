package enclave

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

// Logs are capped: only the tail is kept, where a traceback is, and the
// cut is said; a flood of small writes stays cheap.
func TestTailBufferKeepsTheTail(t *testing.T) {
	b := newTailBuffer(1000)
	for i := range 100_000 {
		b.Write([]byte{byte('a' + i%26)})
	}
	b.Write([]byte("\nValueError: boom\n"))
	got := b.Bytes()
	head, tail, ok := bytes.Cut(got, []byte("\n"))
	if !ok || !strings.Contains(string(head), "logs truncated: only the last 1000 B are kept") {
		t.Fatalf("no truncation mark: %.80q", got)
	}
	if len(tail) != 1000 || !bytes.HasSuffix(tail, []byte("ValueError: boom\n")) {
		t.Fatalf("kept %d bytes ending %q, want the last 1000", len(tail), tail[len(tail)-20:])
	}
	if b.ErrorLine(cleanroom.NodePython) != "ValueError: boom" {
		t.Fatalf("ErrorLine = %q", b.ErrorLine(cleanroom.NodePython))
	}
	small := newTailBuffer(1000)
	small.Write([]byte("short"))
	if string(small.Bytes()) != "short" {
		t.Fatal("short logs were changed")
	}
}
