//go:build !linux

package sandbox

import (
	"context"
	"errors"
)

// ErrNoGVisor is wrapped by the error Run returns when gVisor is not
// available; off Linux it never is.
var ErrNoGVisor = errors.New("sandbox: gVisor (runsc) needs Linux")

// DefaultGVisorPlatform is the platform of a GVisor whose Platform is empty.
const DefaultGVisorPlatform = "ptrace"

// GVisorPlatforms are the platforms Platform may name.
var GVisorPlatforms = []string{"ptrace", "kvm", "systrap"}

// GVisor runs scripts with gVisor, which exists only on Linux; see
// gvisor.go.
type GVisor struct {
	Path     string
	Root     string
	Platform string
	WorkDir  string
}

var _ Runner = (*GVisor)(nil)

// NewGVisor returns a GVisor whose Run always fails off Linux.
func NewGVisor() *GVisor { return &GVisor{Platform: DefaultGVisorPlatform} }

// Run returns ErrNoGVisor: scripts run sandboxed only on Linux.
func (g *GVisor) Run(ctx context.Context, spec Spec) (Result, error) {
	if _, err := spec.validate(); err != nil {
		return Result{}, err
	}
	return Result{}, ErrNoGVisor
}
