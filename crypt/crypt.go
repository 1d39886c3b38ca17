// Package crypt holds the cryptography of cleanroom: the streaming format
// datasets and results are encrypted with, the HPKE key release that sends a
// dataset key to the enclave, and the manifest hash that names a ciphertext.
//
// The streaming format is Tink's AES-GCM-HKDF streaming AEAD with the
// parameters of its AES256_GCM_HKDF_1MB template, so a dataset can be
// encrypted by the Go client, the Python SDK or a browser and decrypted by
// the enclave. The byte formats are described in docs/formats.md, and
// testdata/vectors.json holds test vectors for other implementations.
package crypt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
)

// KeySize is the size in bytes of a dataset or result key.
const KeySize = 32

// ErrIntegrity is returned, possibly wrapped, whenever a ciphertext does not
// authenticate: it was tampered with, truncated, reordered, or is opened with
// the wrong key, associated data or HPKE info.
var ErrIntegrity = errors.New("crypt: ciphertext failed integrity check (tampered, truncated or wrong key)")

// DatasetAD is the associated data of every dataset ciphertext. A dataset
// blob may be published to several clean rooms, so it binds nothing more;
// the binding to a clean room and data node is in the sealed key's HPKE info
// (see DatasetKeyInfo).
var DatasetAD = []byte("cleanroom dataset v1")

// ResultAD returns the associated data of the stored result zip of job
// jobID, so that a stored result cannot be swapped between jobs.
func ResultAD(jobID string) []byte {
	return []byte("cleanroom result v1\x00" + jobID)
}

// LogsAD returns the associated data of the stored logs of job jobID; it
// differs from ResultAD so that logs and result cannot be swapped either.
func LogsAD(jobID string) []byte {
	return []byte("cleanroom logs v1\x00" + jobID)
}

// TableAD returns the associated data of the validated rows a validation
// job jobID stores for computations to read.
func TableAD(jobID string) []byte {
	return []byte("cleanroom table v1\x00" + jobID)
}

// NewKey returns a new random dataset or result key of KeySize bytes.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, nil
}

// ManifestHasher computes the manifest hash of a ciphertext written to it,
// for example through io.MultiWriter while the ciphertext is uploaded.
type ManifestHasher struct {
	h hash.Hash
	n int64
}

// NewManifestHasher returns an empty ManifestHasher.
func NewManifestHasher() *ManifestHasher {
	return &ManifestHasher{h: sha256.New()}
}

// Write adds p to the hashed ciphertext. It never returns an error.
func (m *ManifestHasher) Write(p []byte) (int, error) {
	m.n += int64(len(p))
	return m.h.Write(p)
}

// Sum returns the manifest hash (lowercase hex SHA-256) of the bytes written
// so far.
func (m *ManifestHasher) Sum() string {
	return hex.EncodeToString(m.h.Sum(nil))
}

// Size returns the number of bytes written so far.
func (m *ManifestHasher) Size() int64 {
	return m.n
}

// ManifestHash reads r to its end and returns the manifest hash of the
// ciphertext read (lowercase hex SHA-256) and its size in bytes.
func ManifestHash(r io.Reader) (string, int64, error) {
	m := NewManifestHasher()
	if _, err := io.Copy(m, r); err != nil {
		return "", 0, err
	}
	return m.Sum(), m.Size(), nil
}
