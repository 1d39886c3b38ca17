package crypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
)

// testdata/vectors.json holds the test vectors shared with the Python SDK
// and the browser; docs/formats.md explains every field. Regenerate it with
//
//	go test ./crypt -run TestVectors -update
var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

const vectorsPath = "testdata/vectors.json"

type vectorFile struct {
	Comment        string          `json:"comment"`
	PlaintextRule  string          `json:"plaintext_rule"`
	Stream         []streamVector  `json:"stream"`
	StreamFailures []streamFailure `json:"stream_failures"`
	SealedKeys     sealedKeys      `json:"sealed_keys"`
}

type streamVector struct {
	Name             string `json:"name"`
	Key              string `json:"key"`
	AssociatedData   string `json:"associated_data"`
	Salt             string `json:"salt"`
	NoncePrefix      string `json:"nonce_prefix"`
	PlaintextSize    int64  `json:"plaintext_size"`
	Plaintext        string `json:"plaintext,omitempty"`
	CiphertextSize   int64  `json:"ciphertext_size"`
	CiphertextSHA256 string `json:"ciphertext_sha256"`
	Ciphertext       string `json:"ciphertext,omitempty"`
}

type streamFailure struct {
	Name           string  `json:"name"`
	Base           string  `json:"base"`
	Key            string  `json:"key,omitempty"`
	AssociatedData *string `json:"associated_data,omitempty"`
	FlipByte       *int64  `json:"flip_byte,omitempty"`
	TruncateTo     *int64  `json:"truncate_to,omitempty"`
	Append         string  `json:"append,omitempty"`
	Ciphertext     string  `json:"ciphertext,omitempty"`
}

type sealedKeys struct {
	KEMID             uint16         `json:"kem_id"`
	KDFID             uint16         `json:"kdf_id"`
	AEADID            uint16         `json:"aead_id"`
	EnclavePrivateKey string         `json:"enclave_private_key"`
	EnclavePublicKey  string         `json:"enclave_public_key"`
	Vectors           []sealedVector `json:"vectors"`
}

type sealedVector struct {
	Name         string `json:"name"`
	DCRID        string `json:"dcr_id,omitempty"`
	NodeName     string `json:"node_name,omitempty"`
	ManifestHash string `json:"manifest_hash,omitempty"`
	JobID        string `json:"job_id,omitempty"`
	Info         string `json:"info"`
	Sealed       string `json:"sealed"`
	Key          string `json:"key,omitempty"`
	Valid        bool   `json:"valid"`
}

// label returns SHA-256(s): fixed, unremarkable inputs for the vectors.
func label(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// smallHex is the largest size given in hex in the vectors.
const smallHex = 256

func hexIfSmall(b []byte) string {
	if len(b) > smallHex {
		return ""
	}
	return hex.EncodeToString(b)
}

func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	cts := map[string][]byte{}
	bases := map[string]streamVector{}
	for _, v := range f.Stream {
		ct := checkStreamVector(t, v)
		cts[v.Name], bases[v.Name] = ct, v
	}
	for _, v := range f.StreamFailures {
		base, ok := bases[v.Base]
		if !ok {
			t.Fatalf("%s: unknown base %q", v.Name, v.Base)
		}
		ct := applyFailure(cts[v.Base], v)
		if v.Ciphertext != "" && v.Ciphertext != hex.EncodeToString(ct) {
			t.Errorf("%s: ciphertext differs from its base with the edits", v.Name)
		}
		key, ad := base.Key, base.AssociatedData
		if v.Key != "" {
			key = v.Key
		}
		if v.AssociatedData != nil {
			ad = *v.AssociatedData
		}
		if _, err := decrypt(ct, unhex(t, key), unhex(t, ad), segmentSize); !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: err = %v, want ErrIntegrity", v.Name, err)
		}
	}
	checkSealedKeys(t, f.SealedKeys)
}

// checkStreamVector encrypts the vector's plaintext with its salt and nonce
// prefix, compares the result, decrypts it, and returns the ciphertext.
func checkStreamVector(t *testing.T, v streamVector) []byte {
	pt := pattern(int(v.PlaintextSize))
	if v.Plaintext != "" && v.Plaintext != hex.EncodeToString(pt) {
		t.Errorf("%s: plaintext does not follow the rule", v.Name)
	}
	var buf bytes.Buffer
	w, err := newEncryptWriter(&buf, unhex(t, v.Key), unhex(t, v.AssociatedData), unhex(t, v.Salt), unhex(t, v.NoncePrefix), segmentSize)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ct := buf.Bytes()
	sum := sha256.Sum256(ct)
	if int64(len(ct)) != v.CiphertextSize || CiphertextSize(v.PlaintextSize) != v.CiphertextSize ||
		hex.EncodeToString(sum[:]) != v.CiphertextSHA256 || v.Ciphertext != hexIfSmall(ct) {
		t.Errorf("%s: ciphertext differs from the vector", v.Name)
	}
	got, err := decrypt(ct, unhex(t, v.Key), unhex(t, v.AssociatedData), segmentSize)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("%s: decrypt: %v", v.Name, err)
	}
	return ct
}

// applyFailure applies a failure's edits to its base ciphertext, in the
// order flip_byte, truncate_to, append.
func applyFailure(ct []byte, v streamFailure) []byte {
	ct = bytes.Clone(ct)
	if v.FlipByte != nil {
		ct[*v.FlipByte] ^= 1
	}
	if v.TruncateTo != nil {
		ct = ct[:*v.TruncateTo]
	}
	extra, _ := hex.DecodeString(v.Append)
	return append(ct, extra...)
}

func checkSealedKeys(t *testing.T, s sealedKeys) {
	if s.KEMID != hpkeKEM.ID() || s.KDFID != hpkeKDF.ID() || s.AEADID != hpkeAEAD.ID() {
		t.Errorf("sealed keys: suite %d/%d/%d is not ours", s.KEMID, s.KDFID, s.AEADID)
	}
	k, err := ParsePrivateKey(unhex(t, s.EnclavePrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(k.PublicKey()) != s.EnclavePublicKey {
		t.Errorf("sealed keys: enclave public key does not match the private key")
	}
	for _, v := range s.Vectors {
		var info []byte
		var key []byte
		var err error
		sealed := unhex(t, v.Sealed)
		if v.JobID != "" {
			info = ResultKeyInfo(v.JobID)
			key, err = k.Open(info, sealed)
		} else {
			info = DatasetKeyInfo(v.DCRID, v.NodeName, v.ManifestHash)
			key, err = k.OpenDatasetKey(v.DCRID, v.NodeName, v.ManifestHash, sealed)
		}
		if hex.EncodeToString(info) != v.Info {
			t.Errorf("%s: info differs from the vector", v.Name)
		}
		switch {
		case v.Valid && (err != nil || hex.EncodeToString(key) != v.Key):
			t.Errorf("%s: open = %x, %v; want %s", v.Name, key, err, v.Key)
		case !v.Valid && !errors.Is(err, ErrIntegrity):
			t.Errorf("%s: err = %v, want ErrIntegrity", v.Name, err)
		}
	}
}
