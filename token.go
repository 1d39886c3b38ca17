package cleanroom

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// tokenPrefix marks cleanroom API tokens so they are easy to spot in a
// leaked file or a secret scanner.
const tokenPrefix = "crt_"

// NewToken returns a new random API token (256 bits) and the hash to store.
// Only the hash is ever stored: a copy of the database grants no access.
func NewToken() (token string, hash []byte) {
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	return token, HashToken(token)
}

// HashToken returns the stored form of a token. Tokens carry 256 bits of
// randomness, so a fast hash is enough: there is nothing to brute-force.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// NewID returns a random identifier for jobs and other server-made objects.
func NewID() string { return hex.EncodeToString(randomBytes(16)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand panics rather than return weak bytes
	return b
}

type userKey struct{}

// NewContextWithUser returns ctx carrying the authenticated user's email.
func NewContextWithUser(ctx context.Context, email string) context.Context {
	return context.WithValue(ctx, userKey{}, email)
}

// UserFromContext returns the authenticated user's email, or "".
func UserFromContext(ctx context.Context) string {
	email, _ := ctx.Value(userKey{}).(string)
	return email
}
