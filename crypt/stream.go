package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The streaming format: Tink's AES-GCM-HKDF streaming AEAD, template
// AES256_GCM_HKDF_1MB. See docs/formats.md.
//
//	ciphertext = header || segment 0 || segment 1 || ... || segment n-1
//	header     = byte(headerSize) || salt (32) || nonce prefix (7)
//	segment i  = AES-256-GCM(segment key, nonce i, plaintext i), tag appended
//	nonce i    = nonce prefix || uint32 big-endian i || 1 if i == n-1 else 0
//	segment key = HKDF-SHA256(ikm = key, salt = salt, info = associated data)
//
// Every segment is segmentSize bytes except the last, which is shorter or
// equal; the header counts against the first segment. The last segment is
// empty only when the plaintext is.
const (
	segmentSize     = 1 << 20
	saltSize        = 32
	noncePrefixSize = 7
	headerSize      = 1 + saltSize + noncePrefixSize
	tagSize         = 16
	nonceSize       = 12
	// maxSegments is Tink's limit: segment indices stay below 2^32-1.
	maxSegments = math.MaxUint32
)

// CiphertextSize returns the exact size of the ciphertext of a plaintext of
// plaintextSize bytes, so a client can announce it before encrypting. It
// returns -1 if plaintextSize is negative or too large for the format.
func CiphertextSize(plaintextSize int64) int64 {
	return ciphertextSize(plaintextSize, segmentSize)
}

func ciphertextSize(plaintextSize int64, segSize int) int64 {
	if plaintextSize < 0 {
		return -1
	}
	first := int64(segSize - headerSize - tagSize)
	segments := int64(1)
	if plaintextSize > first {
		other := int64(segSize - tagSize)
		segments += (plaintextSize - first + other - 1) / other
	}
	if segments > maxSegments {
		return -1
	}
	return headerSize + plaintextSize + segments*tagSize
}

// segmentCipher derives the AES-GCM cipher of one ciphertext from the key,
// the salt of its header and the associated data.
func segmentCipher(key, salt, associatedData []byte) (cipher.AEAD, error) {
	dk, err := fileKey(key, salt, associatedData)
	if err != nil {
		return nil, err
	}
	return fileCipher(dk)
}

// fileKey is the AES-GCM key of the segments of one ciphertext:
// HKDF-SHA256 of the key, with the salt of its header and the associated
// data as info.
func fileKey(key, salt, associatedData []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("crypt: key is %d bytes, want %d", len(key), KeySize)
	}
	return hkdf.Key(sha256.New, key, salt, string(associatedData), KeySize)
}

func fileCipher(fileKey []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(fileKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// HeaderSize is the size of a ciphertext's header, which FileKey reads.
const HeaderSize = headerSize

// FileKey returns the key that decrypts the one ciphertext whose header
// is header, made with key and associatedData, and nothing else: it is
// derived with that ciphertext's own salt. The enclave releases it rather
// than the key, which may encrypt other ciphertexts too.
func FileKey(key, header, associatedData []byte) ([]byte, error) {
	if len(header) < headerSize || header[0] != headerSize {
		return nil, fmt.Errorf("%w: not a ciphertext header", ErrIntegrity)
	}
	return fileKey(key, header[1:1+saltSize], associatedData)
}

// NewFileKeyDecryptReader is NewDecryptReader for a ciphertext whose
// FileKey is fileKey.
func NewFileKeyDecryptReader(src io.Reader, fileKey []byte) (io.Reader, error) {
	if len(fileKey) != KeySize {
		return nil, fmt.Errorf("crypt: file key is %d bytes, want %d", len(fileKey), KeySize)
	}
	return newDecryptReaderWith(src, segmentSize, func([]byte) (cipher.AEAD, error) { return fileCipher(fileKey) })
}

// segmentNonce returns the nonce of segment i.
func segmentNonce(prefix *[noncePrefixSize]byte, i uint32, last bool) []byte {
	var n [nonceSize]byte
	copy(n[:], prefix[:])
	binary.BigEndian.PutUint32(n[noncePrefixSize:], i)
	if last {
		n[nonceSize-1] = 1
	}
	return n[:]
}

// NewEncryptWriter returns a writer that encrypts everything written to it
// into dst, with key (KeySize bytes) and associatedData, which must be given
// again to decrypt. It writes the header to dst before returning. Close
// writes the final segment and must be called, or the ciphertext is
// truncated; it does not close dst. The writer buffers one segment (1 MiB).
func NewEncryptWriter(dst io.Writer, key, associatedData []byte) (io.WriteCloser, error) {
	salt := make([]byte, saltSize)
	prefix := make([]byte, noncePrefixSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(prefix); err != nil {
		return nil, err
	}
	return newEncryptWriter(dst, key, associatedData, salt, prefix, segmentSize)
}

type encryptWriter struct {
	dst    io.Writer
	aead   cipher.AEAD
	prefix [noncePrefixSize]byte
	buf    []byte // plaintext of the current segment, with room for the tag
	n      int    // plaintext bytes in buf
	seg    uint32 // index of the current segment
	err    error  // sticky write error
	closed bool
}

// newEncryptWriter is NewEncryptWriter with the salt, nonce prefix and
// segment size chosen by the caller, for test vectors and tests.
func newEncryptWriter(dst io.Writer, key, ad, salt, prefix []byte, segSize int) (*encryptWriter, error) {
	aead, err := segmentCipher(key, salt, ad)
	if err != nil {
		return nil, err
	}
	w := &encryptWriter{dst: dst, aead: aead, buf: make([]byte, segSize)}
	copy(w.prefix[:], prefix)
	header := make([]byte, 0, headerSize)
	header = append(header, headerSize)
	header = append(header, salt...)
	header = append(header, prefix...)
	if _, err := dst.Write(header); err != nil {
		return nil, err
	}
	return w, nil
}

// capacity returns the plaintext size of a full current segment.
func (w *encryptWriter) capacity() int {
	if w.seg == 0 {
		return len(w.buf) - headerSize - tagSize
	}
	return len(w.buf) - tagSize
}

// Write encrypts p. A full segment is written out only once more plaintext
// follows it, because only Close knows which segment is the last.
func (w *encryptWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("crypt: write to closed encrypt writer")
	}
	written := 0
	for len(p) > 0 {
		if w.n == w.capacity() {
			if err := w.flush(false); err != nil {
				return written, err
			}
		}
		k := copy(w.buf[w.n:w.capacity()], p)
		w.n += k
		written += k
		p = p[k:]
	}
	return written, nil
}

// Close encrypts and writes the last segment. It does not close dst.
func (w *encryptWriter) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	if err := w.flush(true); err != nil {
		return err
	}
	w.closed = true
	clear(w.buf)
	return nil
}

func (w *encryptWriter) flush(last bool) error {
	if w.seg == maxSegments-1 && !last {
		w.err = errors.New("crypt: plaintext too large for the streaming format")
		return w.err
	}
	ct := w.aead.Seal(w.buf[:0], segmentNonce(&w.prefix, w.seg, last), w.buf[:w.n], nil)
	if _, err := w.dst.Write(ct); err != nil {
		w.err = err
		return err
	}
	w.n = 0
	w.seg++
	return nil
}

// NewDecryptReader reads the header of a ciphertext from src and returns a
// reader of its plaintext. Every segment is authenticated before any of its
// bytes are returned, and io.EOF is returned only after the last segment
// has been. A tampered, truncated, reordered or extended ciphertext, a wrong
// key or wrong associatedData make NewDecryptReader or Read return an error
// for which errors.Is(err, ErrIntegrity) holds; errors of src are returned
// as they are. The reader buffers one segment (1 MiB).
func NewDecryptReader(src io.Reader, key, associatedData []byte) (io.Reader, error) {
	return newDecryptReader(src, key, associatedData, segmentSize)
}

type decryptReader struct {
	src      io.Reader
	aead     cipher.AEAD
	prefix   [noncePrefixSize]byte
	buf      []byte // one ciphertext segment and one byte of look-ahead
	carry    byte   // look-ahead byte: the first byte of the next segment
	hasCarry bool
	plain    []byte // unread plaintext of the current segment, in buf
	seg      uint32 // index of the next segment
	err      error  // sticky: io.EOF after the last segment, or the failure
}

func newDecryptReader(src io.Reader, key, ad []byte, segSize int) (*decryptReader, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("crypt: key is %d bytes, want %d", len(key), KeySize)
	}
	return newDecryptReaderWith(src, segSize, func(salt []byte) (cipher.AEAD, error) { return segmentCipher(key, salt, ad) })
}

// newDecryptReaderWith reads the header and takes the segments' cipher
// from cipherFor(salt).
func newDecryptReaderWith(src io.Reader, segSize int, cipherFor func(salt []byte) (cipher.AEAD, error)) (*decryptReader, error) {
	var header [headerSize]byte
	if _, err := io.ReadFull(src, header[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: truncated header", ErrIntegrity)
		}
		return nil, err
	}
	if header[0] != headerSize {
		return nil, fmt.Errorf("%w: header length %d, want %d", ErrIntegrity, header[0], headerSize)
	}
	aead, err := cipherFor(header[1 : 1+saltSize])
	if err != nil {
		return nil, err
	}
	r := &decryptReader{src: src, aead: aead, buf: make([]byte, segSize+1)}
	copy(r.prefix[:], header[1+saltSize:])
	return r, nil
}

func (r *decryptReader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// next reads, authenticates and decrypts the next segment into r.plain. It
// returns io.EOF after the last segment.
func (r *decryptReader) next() error {
	size := len(r.buf) - 1 // ciphertext size of a full segment
	if r.seg == 0 {
		size -= headerSize
	}
	pending := 0
	if r.hasCarry {
		r.buf[0] = r.carry
		pending = 1
	}
	// Read one byte past the segment: a segment is the last one exactly
	// when nothing follows it.
	n, err := io.ReadFull(r.src, r.buf[pending:size+1])
	n += pending
	last := false
	switch err {
	case nil:
		n = size
		r.carry, r.hasCarry = r.buf[size], true
	case io.EOF, io.ErrUnexpectedEOF:
		last = true
	default:
		return err
	}
	if n < tagSize {
		return fmt.Errorf("%w: segment %d truncated", ErrIntegrity, r.seg)
	}
	if !last && r.seg == maxSegments-1 {
		return fmt.Errorf("%w: too many segments", ErrIntegrity)
	}
	pt, err := r.aead.Open(r.buf[:0], segmentNonce(&r.prefix, r.seg, last), r.buf[:n], nil)
	if err != nil {
		return fmt.Errorf("%w: segment %d", ErrIntegrity, r.seg)
	}
	r.plain = pt
	r.seg++
	if last {
		return io.EOF
	}
	return nil
}
