package crypt

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Small segments make every boundary case cheap: with 64-byte segments the
// first segment holds 8 plaintext bytes and the others 48.
const smallSeg = 64

// Plaintext capacities of the first and the other segments at 1 MiB.
const (
	firstCap = segmentSize - headerSize - tagSize
	otherCap = segmentSize - tagSize
)

var (
	testKey    = bytes.Repeat([]byte{0x42}, KeySize)
	testSalt   = bytes.Repeat([]byte{0x5a}, saltSize)
	testPrefix = []byte{1, 2, 3, 4, 5, 6, 7}
)

// pattern returns n bytes with byte i = i mod 251, the plaintext rule of the
// test vectors.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// encrypt encrypts pt in writes of chunk bytes (all at once if chunk is 0).
func encrypt(t testing.TB, pt, key, ad []byte, segSize, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newEncryptWriter(&buf, key, ad, testSalt, testPrefix, segSize)
	if err != nil {
		t.Fatal(err)
	}
	if chunk == 0 {
		chunk = max(len(pt), 1)
	}
	for p := pt; len(p) > 0; {
		k := min(chunk, len(p))
		if n, err := w.Write(p[:k]); err != nil || n != k {
			t.Fatalf("Write = %d, %v", n, err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decrypt returns the plaintext read before the first error, and that error
// whether it came from the constructor or from Read.
func decrypt(ct, key, ad []byte, segSize int) ([]byte, error) {
	r, err := newDecryptReader(bytes.NewReader(ct), key, ad, segSize)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRoundTripSmallSegments(t *testing.T) {
	for n := 0; n <= 8+3*48+1; n++ {
		for _, chunk := range []int{0, 1, 7, 48, 49} {
			pt := pattern(n)
			ct := encrypt(t, pt, testKey, DatasetAD, smallSeg, chunk)
			if want := ciphertextSize(int64(n), smallSeg); int64(len(ct)) != want {
				t.Fatalf("size %d: ciphertext is %d bytes, ciphertextSize says %d", n, len(ct), want)
			}
			got, err := decrypt(ct, testKey, DatasetAD, smallSeg)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("size %d chunk %d: round trip failed: %v", n, chunk, err)
			}
		}
	}
}

func TestRoundTripSegmentBoundaries(t *testing.T) {
	sizes := []int{0, 1, 1000, firstCap - 1, firstCap, firstCap + 1,
		firstCap + otherCap - 1, firstCap + otherCap, firstCap + otherCap + 1, 3*segmentSize + 12345}
	for _, n := range sizes {
		for _, chunk := range []int{0, 4093} {
			pt := pattern(n)
			var buf bytes.Buffer
			w, err := NewEncryptWriter(&buf, testKey, DatasetAD)
			if err != nil {
				t.Fatal(err)
			}
			for p := pt; len(p) > 0; {
				k := len(p)
				if chunk > 0 {
					k = min(chunk, k)
				}
				if _, err := w.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := int64(buf.Len()); got != CiphertextSize(int64(n)) {
				t.Fatalf("size %d: ciphertext is %d bytes, CiphertextSize says %d", n, got, CiphertextSize(int64(n)))
			}
			r, err := NewDecryptReader(&buf, testKey, DatasetAD)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("size %d chunk %d: round trip failed: %v", n, chunk, err)
			}
		}
	}
}

func TestCiphertextSize(t *testing.T) {
	for _, c := range []struct{ pt, ct int64 }{
		{0, 56}, {1, 57}, {firstCap, segmentSize}, {firstCap + 1, segmentSize + 1 + tagSize},
		{firstCap + otherCap, 2 * segmentSize}, {-1, -1}, {1 << 62, -1},
	} {
		if got := CiphertextSize(c.pt); got != c.ct {
			t.Errorf("CiphertextSize(%d) = %d, want %d", c.pt, got, c.ct)
		}
	}
}

// TestDecryptFailures checks that every kind of damage to a four-segment
// ciphertext is an ErrIntegrity. Layout with 64-byte segments and 124
// plaintext bytes: header [0,40), segments [40,64) [64,128) [128,192)
// [192,228).
func TestDecryptFailures(t *testing.T) {
	ct := encrypt(t, pattern(124), testKey, DatasetAD, smallSeg, 0)
	if len(ct) != 228 {
		t.Fatalf("ciphertext is %d bytes, want 228", len(ct))
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		ct   []byte
		key  []byte
		ad   []byte
	}{
		{name: "empty", ct: nil},
		{name: "cut header", ct: ct[:20]},
		{name: "header only", ct: ct[:40]},
		{name: "header length byte", ct: flip(0)},
		{name: "salt byte", ct: flip(5)},
		{name: "nonce prefix byte", ct: flip(39)},
		{name: "first segment byte", ct: flip(41)},
		{name: "middle segment byte", ct: flip(100)},
		{name: "tag of last segment", ct: flip(227)},
		{name: "drop last segment", ct: ct[:192]},
		{name: "drop middle segment", ct: cat(ct[:128], ct[192:])},
		{name: "cut mid-segment", ct: ct[:150]},
		{name: "cut one byte into last segment", ct: ct[:193]},
		{name: "cut last byte", ct: ct[:227]},
		{name: "swap two segments", ct: cat(ct[:64], ct[128:192], ct[64:128], ct[192:])},
		{name: "repeat a segment", ct: cat(ct[:128], ct[64:128], ct[128:])},
		{name: "append one byte", ct: cat(ct, []byte{0})},
		{name: "append a segment", ct: cat(ct, ct[64:128])},
		{name: "wrong key", ct: ct, key: bytes.Repeat([]byte{0x43}, KeySize)},
		{name: "wrong associated data", ct: ct, ad: ResultAD("job")},
	}
	for _, c := range cases {
		key, ad := testKey, DatasetAD
		if c.key != nil {
			key = c.key
		}
		if c.ad != nil {
			ad = c.ad
		}
		if _, err := decrypt(c.ct, key, ad, smallSeg); !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: err = %v, want ErrIntegrity", c.name, err)
		}
	}
}

// TestDecryptFailuresFullSize checks truncation at a real segment boundary.
func TestDecryptFailuresFullSize(t *testing.T) {
	ct := encrypt(t, pattern(firstCap+10), testKey, DatasetAD, segmentSize, 0)
	for _, n := range []int{segmentSize, segmentSize + 1, len(ct) - 1} {
		if _, err := decrypt(ct[:n], testKey, DatasetAD, segmentSize); !errors.Is(err, ErrIntegrity) {
			t.Errorf("cut to %d bytes: err = %v, want ErrIntegrity", n, err)
		}
	}
}

// TestDecryptReleasesOnlyAuthenticated checks that plaintext stops at the
// last segment that authenticated.
func TestDecryptReleasesOnlyAuthenticated(t *testing.T) {
	ct := encrypt(t, pattern(124), testKey, DatasetAD, smallSeg, 0)
	ct[150] ^= 1 // third segment
	got, err := decrypt(ct, testKey, DatasetAD, smallSeg)
	if !errors.Is(err, ErrIntegrity) || !bytes.Equal(got, pattern(8+48)) {
		t.Fatalf("got %d bytes, %v; want the first two segments (56 bytes) and ErrIntegrity", len(got), err)
	}
}

type failingIO struct{ err error }

func (f failingIO) Read([]byte) (int, error)  { return 0, f.err }
func (f failingIO) Write([]byte) (int, error) { return 0, f.err }

func TestIOErrors(t *testing.T) {
	boom := errors.New("boom")
	ct := encrypt(t, pattern(100), testKey, DatasetAD, smallSeg, 0)
	r, err := newDecryptReader(io.MultiReader(bytes.NewReader(ct[:70]), failingIO{boom}), testKey, DatasetAD, smallSeg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err != boom {
		t.Errorf("read error = %v, want the source's error", err)
	}
	if _, err := NewEncryptWriter(failingIO{boom}, testKey, DatasetAD); err != boom {
		t.Errorf("header write error = %v, want the destination's error", err)
	}
	if _, err := NewEncryptWriter(io.Discard, testKey[:16], DatasetAD); err == nil {
		t.Error("NewEncryptWriter accepted a 16-byte key")
	}
	if _, err := NewDecryptReader(bytes.NewReader(ct), testKey[:16], DatasetAD); err == nil {
		t.Error("NewDecryptReader accepted a 16-byte key")
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := NewEncryptWriter(io.Discard, testKey, DatasetAD)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestManifestHash(t *testing.T) {
	h, n, err := ManifestHash(bytes.NewReader([]byte("abc")))
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if err != nil || h != want || n != 3 {
		t.Errorf("ManifestHash(abc) = %s, %d, %v; want %s, 3", h, n, err, want)
	}
}

func BenchmarkEncrypt(b *testing.B) {
	pt := pattern(16 << 20)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		w, err := NewEncryptWriter(io.Discard, testKey, DatasetAD)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(pt); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	pt := pattern(16 << 20)
	ct := encrypt(b, pt, testKey, DatasetAD, segmentSize, 0)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		r, err := NewDecryptReader(bytes.NewReader(ct), testKey, DatasetAD)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// A file key opens its own ciphertext and no other made with the same key
// and associated data.
func TestFileKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	ad := []byte("cleanroom result v1\x00job")
	seal := func(p []byte) []byte {
		var ct bytes.Buffer
		w, err := NewEncryptWriter(&ct, key, ad)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p)
		w.Close()
		return ct.Bytes()
	}
	one, other := seal(bytes.Repeat([]byte("one "), 1<<19)), seal([]byte("other"))
	fk, err := FileKey(key, one[:HeaderSize], ad)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewFileKeyDecryptReader(bytes.NewReader(one), fk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("one "), 1<<19)) {
		t.Errorf("the file key does not open its ciphertext: %v", err)
	}
	r, err = NewFileKeyDecryptReader(bytes.NewReader(other), fk)
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if !errors.Is(err, ErrIntegrity) {
		t.Errorf("the file key opens another ciphertext of the same key: %v", err)
	}
	if _, err := FileKey(key, []byte("not a header"), ad); !errors.Is(err, ErrIntegrity) {
		t.Errorf("FileKey of a bad header: %v", err)
	}
}
