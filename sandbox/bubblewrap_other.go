//go:build !linux

package sandbox

import (
	"context"
	"errors"
)

// ErrNoBubblewrap is wrapped by the error Run returns when bubblewrap is not
// available; off Linux it never is.
var ErrNoBubblewrap = errors.New("sandbox: bubblewrap needs Linux")

// Bubblewrap runs scripts with bubblewrap, which exists only on Linux; see
// bubblewrap.go.
type Bubblewrap struct {
	Path string
}

var _ Runner = (*Bubblewrap)(nil)

// NewBubblewrap returns a Bubblewrap whose Run always fails off Linux.
func NewBubblewrap() *Bubblewrap { return &Bubblewrap{} }

// Run returns ErrNoBubblewrap: scripts run sandboxed only on Linux.
func (b *Bubblewrap) Run(ctx context.Context, spec Spec) (Result, error) {
	if _, err := spec.validate(); err != nil {
		return Result{}, err
	}
	return Result{}, ErrNoBubblewrap
}
