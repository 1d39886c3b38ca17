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

// ErrorLine picks, per kind, the line that says what went wrong.
func TestErrorLine(t *testing.T) {
	for _, tc := range []struct {
		kind       cleanroom.NodeKind
		logs, want string
	}{
		{cleanroom.NodePython, "working\nTraceback (most recent call last):\n  File \"/cleanroom/main.py\", line 2\nValueError: boom\n", "ValueError: boom"},
		{cleanroom.NodeR, "Error in log(v) (from main.R#3) : non-numeric argument\nCalls: source -> f\nExecution halted\n", "Error in log(v) (from main.R#3) : non-numeric argument"},
		// R wrapped the message, and names our source() call: both undone.
		{cleanroom.NodeR, "Error in source(\"/cleanroom/main.R\", keep.source = TRUE, print.eval = TRUE) : \n  /cleanroom/main.R:4:0: unexpected end of input\n3: y <- (1 +\n   ^\nExecution halted\n", "Error: /cleanroom/main.R:4:0: unexpected end of input"},
		// An error caught with try(), or a script's own words: R did not halt on them.
		{cleanroom.NodeR, "Error in f() : caught\nError rate: 0.1\ndone\n", "done"},
		{cleanroom.NodeR, "Error rate: 0.1\nKilled\n", "Killed"},
		{cleanroom.NodeSQL, "cleanroom-worker: query failed: Binder Error: column \"x\" not found\n\nLINE 3: WHERE x > 1\n              ^\n", "query failed: Binder Error: column \"x\" not found"},
	} {
		b := newTailBuffer(1 << 20)
		b.Write([]byte(tc.logs))
		if got := b.ErrorLine(tc.kind); got != tc.want {
			t.Errorf("%s logs %q: ErrorLine = %q, want %q", tc.kind, tc.logs, got, tc.want)
		}
	}
}
