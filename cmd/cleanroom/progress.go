package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// progress shows how far a long transfer is. On a terminal it redraws one
// line; elsewhere (a log, a pipe) it prints a line every few seconds.
type progress struct {
	w        io.Writer
	label    string
	terminal bool
	start    time.Time

	mu          sync.Mutex
	last        time.Time
	sent, total int64
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

// Update records progress; it is cheap enough to call on every write.
func (p *progress) Update(sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent, p.total = sent, total
	every := 5 * time.Second
	if p.terminal {
		every = 200 * time.Millisecond
	}
	if now := time.Now(); now.Sub(p.last) >= every {
		p.last = now
		p.draw(false)
	}
}

// Done prints the final state.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
}

func (p *progress) draw(final bool) {
	elapsed := time.Since(p.start).Seconds()
	rate := ""
	if elapsed > 0 {
		rate = fmt.Sprintf("  %s/s", cleanroom.FormatBytes(int64(float64(p.sent)/elapsed)))
	}
	line := fmt.Sprintf("%s: %s", p.label, cleanroom.FormatBytes(p.sent))
	if p.total > 0 {
		line += fmt.Sprintf(" / %s  %3d%%", cleanroom.FormatBytes(p.total), p.sent*100/p.total)
	}
	line += rate
	switch {
	case p.terminal && final:
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	case p.terminal:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	default:
		fmt.Fprintln(p.w, line)
	}
}
