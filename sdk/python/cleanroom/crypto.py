"""The cryptography of cleanroom, byte for byte as in docs/formats.md.

- Streaming encryption of datasets (and of results and logs inside the
  enclave): Tink's AES-GCM-HKDF streaming AEAD with the parameters of its
  ``AES256_GCM_HKDF_1MB`` template. Data is handled one 1 MiB segment at a
  time, so any size is encrypted in constant memory, and tampering,
  truncation, reordering and extension are all detected.
- Key release: HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256),
  HKDF-SHA256 and AES-128-GCM, the suite of the RFC's test vectors A.1. The
  ``cryptography`` package of Debian 12 has no HPKE, so it is built here on
  its X25519 and AES-GCM primitives and the standard library's HMAC.

The Go implementation (``crypt/``) and this one are checked against the same
test vectors (``crypt/testdata/vectors.json`` and ``rfc9180-a1.json``).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from typing import BinaryIO, Iterator, Optional, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import IntegrityError

KEY_SIZE = 32
"""Size in bytes of a dataset or result key."""

SEGMENT_SIZE = 1 << 20
"""Ciphertext size of every full segment (the header shares the first)."""
HEADER_SIZE = 40
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
FIRST_SEGMENT_PLAINTEXT = SEGMENT_SIZE - HEADER_SIZE - TAG_SIZE  # 1048520
SEGMENT_PLAINTEXT = SEGMENT_SIZE - TAG_SIZE  # 1048560
_MAX_SEGMENTS = 0xFFFFFFFF

DATASET_AD = b"cleanroom dataset v1"
"""Associated data of every dataset ciphertext. A dataset blob may be
published to several clean rooms, so it binds nothing more; the binding to
one clean room and data node is in the sealed key's HPKE info."""


def result_ad(job_id: str) -> bytes:
    """Associated data of the stored result zip of a job."""
    return b"cleanroom result v1\x00" + job_id.encode()


def logs_ad(job_id: str) -> bytes:
    """Associated data of the stored logs of a job."""
    return b"cleanroom logs v1\x00" + job_id.encode()


class Key:
    """A 32-byte dataset key.

    ``Key()`` makes a fresh random key; ``Key(material)`` wraps existing
    bytes, e.g. to publish the same ciphertext to another clean room.
    """

    __slots__ = ("material",)

    def __init__(self, material: Optional[bytes] = None) -> None:
        if material is None:
            material = os.urandom(KEY_SIZE)
        material = bytes(material)
        if len(material) != KEY_SIZE:
            raise ValueError(f"a dataset key is {KEY_SIZE} bytes, not {len(material)}")
        self.material = material

    def __repr__(self) -> str:  # never print key material
        return "Key(<32 bytes>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and hmac.compare_digest(self.material, other.material)

    def __hash__(self) -> int:
        return hash(self.material)


# --- HKDF (RFC 5869) over the standard library's HMAC-SHA256 -------------

def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


# --- Streaming AEAD -------------------------------------------------------

def ciphertext_size(plaintext_size: int) -> int:
    """Size of the ciphertext of ``plaintext_size`` bytes, known before
    encrypting, so an upload can announce its exact length."""
    if plaintext_size < 0:
        raise ValueError("negative plaintext size")
    segments = 1
    if plaintext_size > FIRST_SEGMENT_PLAINTEXT:
        rest = plaintext_size - FIRST_SEGMENT_PLAINTEXT
        segments += -(-rest // SEGMENT_PLAINTEXT)
    return HEADER_SIZE + plaintext_size + TAG_SIZE * segments


def _segment_cipher(key: bytes, salt: bytes, associated_data: bytes) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise ValueError(f"key is {len(key)} bytes, want {KEY_SIZE}")
    return AESGCM(_hkdf_expand(_hkdf_extract(salt, key), associated_data, KEY_SIZE))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= _MAX_SEGMENTS:
        raise ValueError("too many segments: the format ends at 2^32 - 1 segments")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _read_full(stream: BinaryIO, n: int) -> bytes:
    """Read n bytes, fewer only at the end of the stream."""
    data = stream.read(n)
    if data is None:
        raise ValueError("the data stream is non-blocking and had nothing to read; pass a blocking binary file object")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be a binary file object (opened with 'rb' or io.BytesIO), its read() returned {type(data).__name__}")
    if len(data) == n or not data:
        return bytes(data)
    parts = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def encrypt_stream(stream: BinaryIO, key: bytes, associated_data: bytes, *,
                   _salt: Optional[bytes] = None,
                   _nonce_prefix: Optional[bytes] = None) -> Iterator[bytes]:
    """Encrypt a binary stream, yielding the header and then one ciphertext
    segment at a time (at most 1 MiB each).

    Memory stays constant: two plaintext segments and one ciphertext
    segment at most. ``_salt`` and ``_nonce_prefix`` fix the header's
    random parts for test vectors only; never pass them otherwise.
    """
    salt = os.urandom(SALT_SIZE) if _salt is None else _salt
    prefix = os.urandom(NONCE_PREFIX_SIZE) if _nonce_prefix is None else _nonce_prefix
    if len(salt) != SALT_SIZE or len(prefix) != NONCE_PREFIX_SIZE:
        raise ValueError("salt must be 32 bytes and nonce prefix 7 bytes")
    aead = _segment_cipher(key, salt, associated_data)
    yield bytes([HEADER_SIZE]) + salt + prefix
    current = _read_full(stream, FIRST_SEGMENT_PLAINTEXT)
    index = 0
    while True:
        # One segment of lookahead tells whether the current one is last:
        # the last segment is never empty unless it is the only one.
        following = _read_full(stream, SEGMENT_PLAINTEXT) if len(current) else b""
        last = not following
        yield aead.encrypt(_nonce(prefix, index, last), current, None)
        if last:
            return
        current, index = following, index + 1


def decrypt_stream(stream: BinaryIO, key: bytes, associated_data: bytes) -> Iterator[bytes]:
    """Decrypt a ciphertext stream, yielding plaintext one verified segment
    at a time.

    Raises :class:`IntegrityError` for a ciphertext that was tampered with,
    truncated, reordered or extended, or opened with the wrong key or
    associated data. A consumer may already have seen earlier segments when
    that happens and must then treat the whole output as invalid.
    """
    return _decrypt(stream, lambda salt: _segment_cipher(key, salt, associated_data))


def decrypt_stream_with_file_key(stream: BinaryIO, file_key: bytes) -> Iterator[bytes]:
    """:func:`decrypt_stream` for a ciphertext of which only its own file
    key is known: HKDF of the key with its salt and associated data, which
    opens that ciphertext and no other (a download is sent with it)."""
    if len(file_key) != 32:
        raise IntegrityError("a file key is 32 bytes")
    return _decrypt(stream, lambda salt: AESGCM(file_key))


def download_key_info(associated_data: bytes) -> bytes:
    """The HPKE info binding a file key sealed to a client to the
    ciphertext it opens, named by its associated data."""
    return b"cleanroom download key v1\x00" + associated_data


def _decrypt(stream: BinaryIO, cipher_for) -> Iterator[bytes]:
    header = _read_full(stream, HEADER_SIZE)
    if len(header) < HEADER_SIZE or header[0] != HEADER_SIZE:
        raise IntegrityError("ciphertext has no valid header (truncated or not a cleanroom ciphertext)")
    aead = cipher_for(header[1:1 + SALT_SIZE])
    prefix = header[1 + SALT_SIZE:]
    # Read one byte beyond a full segment: its presence says the segment is not the last.
    size = SEGMENT_SIZE - HEADER_SIZE
    buf = _read_full(stream, size + 1)
    index = 0
    while True:
        last = len(buf) <= size
        segment, extra = (buf, b"") if last else (buf[:size], buf[size:])
        if len(segment) < TAG_SIZE:
            raise IntegrityError("ciphertext is truncated")
        try:
            yield aead.decrypt(_nonce(prefix, index, last), segment, None)
        except InvalidTag:
            raise IntegrityError("ciphertext failed its integrity check (tampered, truncated or wrong key)") from None
        if last:
            return
        index, size = index + 1, SEGMENT_SIZE
        buf = extra + _read_full(stream, size)


def encrypt(plaintext: bytes, key: bytes, associated_data: bytes) -> bytes:
    """Encrypt bytes in memory (for small data; see :func:`encrypt_stream`)."""
    return b"".join(encrypt_stream(io.BytesIO(plaintext), key, associated_data))


def decrypt(ciphertext: bytes, key: bytes, associated_data: bytes) -> bytes:
    """Decrypt bytes in memory (for small data; see :func:`decrypt_stream`)."""
    return b"".join(decrypt_stream(io.BytesIO(ciphertext), key, associated_data))


# --- HPKE (RFC 9180), base mode, one suite ---------------------------------

KEM_ID = 0x0020   # DHKEM(X25519, HKDF-SHA256)
KDF_ID = 0x0001   # HKDF-SHA256
AEAD_ID = 0x0001  # AES-128-GCM
HPKE_SUITE: Tuple[int, int, int] = (KEM_ID, KDF_ID, AEAD_ID)

_KEM_SUITE = b"KEM" + struct.pack(">H", KEM_ID)
_HPKE_SUITE = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, AEAD_ID)
_ENC_SIZE = 32
_AEAD_KEY_SIZE = 16
_AEAD_NONCE_SIZE = 12


def _labeled_extract(salt: bytes, suite: bytes, label: bytes, ikm: bytes) -> bytes:
    return _hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(prk: bytes, suite: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _hkdf_expand(prk, struct.pack(">H", length) + b"HPKE-v1" + suite + label + info, length)


def _raw_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        shared = bytes(32)
    if not any(shared):
        raise IntegrityError("HPKE: X25519 with this public key gives the all-zero value")
    return shared


def _shared_secret(dh: bytes, enc: bytes, public_r: bytes) -> bytes:
    eae_prk = _labeled_extract(b"", _KEM_SUITE, b"eae_prk", dh)
    return _labeled_expand(eae_prk, _KEM_SUITE, b"shared_secret", enc + public_r, 32)


class _Context:
    """An HPKE encryption context: the AEAD key, base nonce and sequence
    number of RFC 9180 section 5.2."""

    def __init__(self, shared_secret: bytes, info: bytes) -> None:
        psk_id_hash = _labeled_extract(b"", _HPKE_SUITE, b"psk_id_hash", b"")
        info_hash = _labeled_extract(b"", _HPKE_SUITE, b"info_hash", info)
        context = b"\x00" + psk_id_hash + info_hash  # mode_base
        secret = _labeled_extract(shared_secret, _HPKE_SUITE, b"secret", b"")
        self._aead = AESGCM(_labeled_expand(secret, _HPKE_SUITE, b"key", context, _AEAD_KEY_SIZE))
        self._base_nonce = _labeled_expand(secret, _HPKE_SUITE, b"base_nonce", context, _AEAD_NONCE_SIZE)
        self.seq = 0

    def _next_nonce(self) -> bytes:
        seq = self.seq.to_bytes(_AEAD_NONCE_SIZE, "big")
        self.seq += 1
        return bytes(a ^ b for a, b in zip(self._base_nonce, seq))

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(self._next_nonce(), plaintext, aad)

    def open(self, aad: bytes, ciphertext: bytes) -> bytes:
        try:
            plaintext = self._aead.decrypt(self._next_nonce(), ciphertext, aad)
        except InvalidTag:
            self.seq -= 1
            raise IntegrityError("sealed message does not open (wrong key or info, or tampered)") from None
        return plaintext


def _setup_sender(public_r: bytes, info: bytes,
                  ephemeral: Optional[X25519PrivateKey] = None) -> Tuple[bytes, _Context]:
    if len(public_r) != 32:
        raise ValueError(f"an X25519 public key is 32 bytes, not {len(public_r)}")
    ephemeral = ephemeral or X25519PrivateKey.generate()
    enc = _raw_public(ephemeral)
    return enc, _Context(_shared_secret(_dh(ephemeral, public_r), enc, public_r), info)


def _setup_receiver(enc: bytes, private_r: bytes, info: bytes) -> _Context:
    private = X25519PrivateKey.from_private_bytes(private_r)
    return _Context(_shared_secret(_dh(private, enc), enc, _raw_public(private)), info)


def seal(public_key: bytes, info: bytes, plaintext: bytes, *,
         _ephemeral_private_key: Optional[bytes] = None) -> bytes:
    """HPKE single-shot seal to a 32-byte X25519 public key, bound to
    ``info``: returns ``enc (32 bytes) || ciphertext``, with empty aad.

    ``_ephemeral_private_key`` fixes the ephemeral key for the RFC's test
    vectors only; sealing with a known ephemeral key exposes the plaintext.
    """
    ephemeral = None
    if _ephemeral_private_key is not None:
        ephemeral = X25519PrivateKey.from_private_bytes(_ephemeral_private_key)
    enc, ctx = _setup_sender(public_key, info, ephemeral)
    return enc + ctx.seal(b"", plaintext)


def open_sealed(private_key: bytes, info: bytes, sealed: bytes) -> bytes:
    """HPKE single-shot open of ``enc || ciphertext`` with a 32-byte X25519
    private key and the same ``info``; raises :class:`IntegrityError` if it
    does not open."""
    if len(sealed) < _ENC_SIZE + TAG_SIZE:
        raise IntegrityError("sealed message is too short")
    ctx = _setup_receiver(sealed[:_ENC_SIZE], private_key, info)
    return ctx.open(b"", sealed[_ENC_SIZE:])


def public_key_of(private_key: bytes) -> bytes:
    """The 32-byte X25519 public key of a 32-byte private key."""
    return _raw_public(X25519PrivateKey.from_private_bytes(private_key))


def _is_hex256(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def dataset_key_info(dcr_id: str, node_name: str, manifest_hash: str) -> bytes:
    """HPKE info binding a dataset key to one clean room, data node and
    ciphertext: ``"cleanroom dataset key v1" 0x00 dcr_id 0x00 node 0x00
    manifest_hash``. Refuses a binding another implementation could encode
    differently (uppercase hex) or ambiguously (0x00 in the node name)."""
    if not _is_hex256(dcr_id):
        raise ValueError("clean room id must be 64 lowercase hex digits")
    if not _is_hex256(manifest_hash):
        raise ValueError("manifest hash must be 64 lowercase hex digits")
    if not node_name or "\x00" in node_name:
        raise ValueError("node name must be non-empty and contain no 0x00")
    return b"\x00".join([b"cleanroom dataset key v1", dcr_id.encode(), node_name.encode(), manifest_hash.encode()])


def result_key_info(job_id: str) -> bytes:
    """HPKE info binding a result key to a job."""
    return b"cleanroom result key v1\x00" + job_id.encode()


def seal_dataset_key(public_key: bytes, dcr_id: str, node_name: str, manifest_hash: str, key: bytes) -> bytes:
    """Seal a 32-byte dataset key to the enclave for exactly this clean
    room, data node and ciphertext."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"dataset key is {len(key)} bytes, want {KEY_SIZE}")
    return seal(public_key, dataset_key_info(dcr_id, node_name, manifest_hash), key)


def open_dataset_key(private_key: bytes, dcr_id: str, node_name: str, manifest_hash: str, sealed: bytes) -> bytes:
    """Open a sealed dataset key, refusing it unless it was sealed for
    exactly this binding and is 32 bytes (what the enclave does)."""
    key = open_sealed(private_key, dataset_key_info(dcr_id, node_name, manifest_hash), sealed)
    if len(key) != KEY_SIZE:
        raise IntegrityError(f"dataset key is {len(key)} bytes, want {KEY_SIZE}")
    return key
