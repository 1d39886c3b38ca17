package crypt

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Key release uses HPKE (RFC 9180) in base mode with the suite of the RFC's
// test vectors A.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
// A sealed message is enc (32 bytes) || AEAD ciphertext, with empty aad.
var (
	hpkeKEM  = hpke.DHKEM(ecdh.X25519())
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES128GCM()
)

// PrivateKey is the enclave's X25519 key, to which clients seal dataset keys.
type PrivateKey struct {
	raw []byte
	key hpke.PrivateKey
}

// GeneratePrivateKey returns a new random enclave key.
func GeneratePrivateKey() (*PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return newPrivateKey(k)
}

// ParsePrivateKey parses a key returned by PrivateKey.Bytes: 32 raw X25519
// bytes.
func ParsePrivateKey(b []byte) (*PrivateKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("crypt: invalid private key: %w", err)
	}
	return newPrivateKey(k)
}

func newPrivateKey(k *ecdh.PrivateKey) (*PrivateKey, error) {
	hk, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{raw: k.Bytes(), key: hk}, nil
}

// Bytes returns the key as 32 raw X25519 bytes, as read by ParsePrivateKey.
func (k *PrivateKey) Bytes() []byte {
	return append([]byte(nil), k.raw...)
}

// PublicKey returns the public key as 32 raw X25519 bytes, as taken by Seal.
func (k *PrivateKey) PublicKey() []byte {
	return k.key.PublicKey().Bytes()
}

// Seal encrypts plaintext to the public key pub (32 raw X25519 bytes),
// bound to info. The result is enc (32 bytes) || ciphertext.
func Seal(pub []byte, info, plaintext []byte) ([]byte, error) {
	pk, err := hpkeKEM.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("crypt: invalid public key: %w", err)
	}
	return hpke.Seal(pk, hpkeKDF, hpkeAEAD, info, plaintext)
}

// Open decrypts a message sealed to k with the same info. A wrong key or
// info, or a tampered message, returns an error for which
// errors.Is(err, ErrIntegrity) holds.
func (k *PrivateKey) Open(info, sealed []byte) ([]byte, error) {
	pt, err := hpke.Open(k.key, hpkeKDF, hpkeAEAD, info, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed key does not open", ErrIntegrity)
	}
	return pt, nil
}

// DatasetKeyInfo returns the HPKE info that binds a sealed dataset key to
// the data node nodeName of the clean room dcrID and to the ciphertext of
// manifest hash manifestHash: "cleanroom dataset key v1" 0x00 dcrID 0x00
// nodeName 0x00 manifestHash. Ids and hashes are lowercase hex.
func DatasetKeyInfo(dcrID, nodeName, manifestHash string) []byte {
	return []byte("cleanroom dataset key v1\x00" + dcrID + "\x00" + nodeName + "\x00" + manifestHash)
}

// ResultKeyInfo returns the HPKE info that binds a sealed result key to the
// job jobID: "cleanroom result key v1" 0x00 jobID.
func ResultKeyInfo(jobID string) []byte {
	return []byte("cleanroom result key v1\x00" + jobID)
}

// DownloadKeyInfo returns the HPKE info that binds a file key (FileKey)
// sealed to a client to the ciphertext it was made for, named by its
// associated data: "cleanroom download key v1" 0x00 associatedData.
func DownloadKeyInfo(associatedData []byte) []byte {
	return append([]byte("cleanroom download key v1\x00"), associatedData...)
}

// SealDatasetKey seals datasetKey to the enclave public key pub for the
// data node nodeName of clean room dcrID and the ciphertext of manifest hash
// manifestHash (both 64 lowercase hex digits).
func SealDatasetKey(pub []byte, dcrID, nodeName, manifestHash string, datasetKey []byte) ([]byte, error) {
	if err := checkBinding(dcrID, nodeName, manifestHash); err != nil {
		return nil, err
	}
	if len(datasetKey) != KeySize {
		return nil, fmt.Errorf("crypt: dataset key is %d bytes, want %d", len(datasetKey), KeySize)
	}
	return Seal(pub, DatasetKeyInfo(dcrID, nodeName, manifestHash), datasetKey)
}

// OpenDatasetKey opens a dataset key sealed by SealDatasetKey, and refuses
// it, with an error satisfying errors.Is(err, ErrIntegrity), unless it was
// sealed to k for exactly this clean room, data node and manifest hash and
// is KeySize bytes long.
func (k *PrivateKey) OpenDatasetKey(dcrID, nodeName, manifestHash string, sealed []byte) ([]byte, error) {
	if err := checkBinding(dcrID, nodeName, manifestHash); err != nil {
		return nil, err
	}
	key, err := k.Open(DatasetKeyInfo(dcrID, nodeName, manifestHash), sealed)
	if err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: dataset key is %d bytes, want %d", ErrIntegrity, len(key), KeySize)
	}
	return key, nil
}

// checkBinding rejects a binding that another implementation could encode
// differently (uppercase hex) or ambiguously (a 0x00 in the node name).
func checkBinding(dcrID, nodeName, manifestHash string) error {
	if !isHex256(dcrID) {
		return errors.New("crypt: clean room id must be 64 lowercase hex digits")
	}
	if !isHex256(manifestHash) {
		return errors.New("crypt: manifest hash must be 64 lowercase hex digits")
	}
	if nodeName == "" || strings.IndexByte(nodeName, 0) >= 0 {
		return errors.New("crypt: node name must be non-empty and contain no 0x00 byte")
	}
	return nil
}

func isHex256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SoftwarePlatform is the attestation platform of an enclave that runs in
// the server's process: only the operator vouches for its key.
const SoftwarePlatform = "software"

// Suite returns the RFC 9180 ids (KEM, KDF, AEAD) of the suite keys are
// sealed with, as attestation documents state it.
func Suite() (kem, kdf, aead uint16) {
	return hpkeKEM.ID(), hpkeKDF.ID(), hpkeAEAD.ID()
}

// CheckAttestation refuses an enclave that a dataset key must not be sealed
// to: one that states another HPKE suite, a key that is not X25519, or a
// platform this client does not know. It returns whether the enclave runs
// in software, which the caller must tell its user.
func CheckAttestation(platform string, publicKey []byte, kem, kdf, aead uint16) (software bool, err error) {
	wantKEM, wantKDF, wantAEAD := Suite()
	if kem != wantKEM || kdf != wantKDF || aead != wantAEAD {
		return false, fmt.Errorf("the enclave seals with HPKE suite (KEM %#04x, KDF %#04x, AEAD %#04x), but this client only with (%#04x, %#04x, %#04x); no key was sent: update the client", kem, kdf, aead, wantKEM, wantKDF, wantAEAD)
	}
	if _, err := hpkeKEM.NewPublicKey(publicKey); err != nil {
		return false, fmt.Errorf("the enclave's public key (%d bytes) is not an X25519 key; no key was sent", len(publicKey))
	}
	if platform != SoftwarePlatform {
		return false, fmt.Errorf("the enclave runs on platform %q, which this client cannot verify; no key was sent: update the client", platform)
	}
	return true, nil
}
