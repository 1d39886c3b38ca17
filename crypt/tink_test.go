package crypt

import (
	"bytes"
	"io"
	"testing"

	tink "github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
)

// These tests prove that the format is Tink's AES-GCM-HKDF streaming AEAD
// (template AES256_GCM_HKDF_1MB): Tink decrypts our ciphertexts, we decrypt
// Tink's, and with Tink's salt and nonce prefix we produce its exact bytes.

func newTink(t *testing.T, segSize int) *tink.AESGCMHKDF {
	t.Helper()
	a, err := tink.NewAESGCMHKDF(testKey, "SHA256", KeySize, segSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tinkEncrypt(t *testing.T, a *tink.AESGCMHKDF, pt, ad []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := a.NewEncryptingWriter(&buf, ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkTinkInterop(t *testing.T, segSize, n int, ad []byte) {
	t.Helper()
	a := newTink(t, segSize)
	pt := pattern(n)

	ours := encrypt(t, pt, testKey, ad, segSize, 0)
	r, err := a.NewDecryptingReader(bytes.NewReader(ours), ad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("segment %d, size %d: Tink cannot decrypt ours: %v", segSize, n, err)
	}

	theirs := tinkEncrypt(t, a, pt, ad)
	if got, err := decrypt(theirs, testKey, ad, segSize); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("segment %d, size %d: we cannot decrypt Tink's: %v", segSize, n, err)
	}

	var same bytes.Buffer
	w, err := newEncryptWriter(&same, testKey, ad, theirs[1:1+saltSize], theirs[1+saltSize:headerSize], segSize)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(same.Bytes(), theirs) {
		t.Fatalf("segment %d, size %d: with Tink's salt and nonce prefix our ciphertext differs", segSize, n)
	}
}

func TestTinkInteropSmallSegments(t *testing.T) {
	for n := 0; n <= 8+4*48+1; n++ {
		checkTinkInterop(t, smallSeg, n, DatasetAD)
	}
}

func TestTinkInterop1MiB(t *testing.T) {
	for _, n := range []int{0, 1, 5, firstCap - 1, firstCap, firstCap + 1,
		firstCap + otherCap - 1, firstCap + otherCap, firstCap + otherCap + 1} {
		checkTinkInterop(t, segmentSize, n, DatasetAD)
	}
	checkTinkInterop(t, segmentSize, 1000, ResultAD("0123456789abcdef"))
	checkTinkInterop(t, segmentSize, 1000, nil)
}
