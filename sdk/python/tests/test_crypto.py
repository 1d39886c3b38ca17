"""The SDK's cryptography against the shared test vectors
(crypt/testdata/vectors.json, docs/formats.md), RFC 9180's own A.1 vectors,
and the Go implementation itself in both directions."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tempfile
import textwrap
import unittest

import harness
from cleanroom import IntegrityError, crypto

TESTDATA = harness.REPO_DIR / "crypt" / "testdata"
_PATTERN = bytes(range(251))


def plaintext(size: int) -> bytes:
    """The vectors' plaintext rule: byte i is i mod 251."""
    return (_PATTERN * (size // 251 + 1))[:size]


def h(s: str) -> bytes:
    return bytes.fromhex(s)


class ShortReads(io.RawIOBase):
    """A stream that returns at most `step` bytes per read, as pipes and
    sockets do, to check that segment boundaries do not depend on reads."""

    def __init__(self, data: bytes, step: int = 100_003) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


class StreamVectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        with open(TESTDATA / "vectors.json") as f:
            cls.vectors = json.load(f)
        cls.stream = {v["name"]: v for v in cls.vectors["stream"]}

    def encrypt_vector(self, v: dict) -> bytes:
        return b"".join(crypto.encrypt_stream(io.BytesIO(plaintext(v["plaintext_size"])), h(v["key"]),
                                              h(v["associated_data"]), _salt=h(v["salt"]),
                                              _nonce_prefix=h(v["nonce_prefix"])))

    def test_encrypt_reproduces_every_vector(self) -> None:
        self.assertGreaterEqual(len(self.stream), 8)
        for v in self.vectors["stream"]:
            with self.subTest(v["name"]):
                if "plaintext" in v:
                    self.assertEqual(h(v["plaintext"]), plaintext(v["plaintext_size"]))
                ct = self.encrypt_vector(v)
                self.assertEqual(len(ct), v["ciphertext_size"])
                self.assertEqual(crypto.ciphertext_size(v["plaintext_size"]), v["ciphertext_size"])
                self.assertEqual(hashlib.sha256(ct).hexdigest(), v["ciphertext_sha256"])
                if "ciphertext" in v:
                    self.assertEqual(ct.hex(), v["ciphertext"])

    def test_decrypt_every_vector(self) -> None:
        for v in self.vectors["stream"]:
            with self.subTest(v["name"]):
                # Go made these bytes (their hash is fixed in the vectors); decrypt them here.
                ct = h(v["ciphertext"]) if "ciphertext" in v else self.encrypt_vector(v)
                self.assertEqual(hashlib.sha256(ct).hexdigest(), v["ciphertext_sha256"])
                pt = crypto.decrypt(ct, h(v["key"]), h(v["associated_data"]))
                self.assertEqual(pt, plaintext(v["plaintext_size"]))
                streamed = b"".join(crypto.decrypt_stream(ShortReads(ct), h(v["key"]), h(v["associated_data"])))
                self.assertEqual(streamed, pt)

    def test_reject_every_tampered_vector(self) -> None:
        failures = self.vectors["stream_failures"]
        self.assertGreaterEqual(len(failures), 10)
        for f in failures:
            with self.subTest(f["name"]):
                base = self.stream[f["base"]]
                ct = bytearray(h(base["ciphertext"]) if "ciphertext" in base else self.encrypt_vector(base))
                if "flip_byte" in f:
                    ct[f["flip_byte"]] ^= 0x01
                if "truncate_to" in f:
                    del ct[f["truncate_to"]:]
                if "append" in f:
                    ct += h(f["append"])
                if "ciphertext" in f:
                    self.assertEqual(bytes(ct).hex(), f["ciphertext"])
                key = h(f["key"]) if "key" in f else h(base["key"])
                ad = h(f["associated_data"]) if "associated_data" in f else h(base["associated_data"])
                with self.assertRaises(IntegrityError):
                    crypto.decrypt(bytes(ct), key, ad)

    def test_round_trip_at_segment_boundaries(self) -> None:
        key = os.urandom(32)
        first, seg = crypto.FIRST_SEGMENT_PLAINTEXT, crypto.SEGMENT_PLAINTEXT
        for size in (0, 1, first - 1, first, first + 1, first + seg - 1, first + seg, first + seg + 1):
            with self.subTest(size=size):
                data = os.urandom(size)
                ct = b"".join(crypto.encrypt_stream(ShortReads(data), key, crypto.DATASET_AD))
                self.assertEqual(len(ct), crypto.ciphertext_size(size))
                self.assertEqual(crypto.decrypt(ct, key, crypto.DATASET_AD), data)
                with self.assertRaises(IntegrityError):
                    crypto.decrypt(ct, key, crypto.result_ad("job"))

    def test_ciphertext_size(self) -> None:
        self.assertEqual(crypto.ciphertext_size(0), 56)
        self.assertEqual(crypto.ciphertext_size(1048520), 40 + 1048520 + 16)
        self.assertEqual(crypto.ciphertext_size(1048521), 40 + 1048521 + 32)
        self.assertEqual(crypto.ciphertext_size(1 << 30), 40 + (1 << 30) + 16 * 1025)


class SealedKeyVectorsTest(unittest.TestCase):
    def test_open_every_sealed_key_vector(self) -> None:
        with open(TESTDATA / "vectors.json") as f:
            vectors = json.load(f)
        sk = vectors["sealed_keys"]
        self.assertEqual((sk["kem_id"], sk["kdf_id"], sk["aead_id"]), crypto.HPKE_SUITE)
        private = h(sk["enclave_private_key"])
        self.assertEqual(crypto.public_key_of(private).hex(), sk["enclave_public_key"])
        valid = 0
        for v in sk["vectors"]:
            with self.subTest(v["name"]):
                if "job_id" in v:
                    info = crypto.result_key_info(v["job_id"])
                    opener = lambda: crypto.open_sealed(private, info, h(v["sealed"]))  # noqa: E731
                else:
                    info = crypto.dataset_key_info(v["dcr_id"], v["node_name"], v["manifest_hash"])
                    opener = lambda: crypto.open_dataset_key(  # noqa: E731
                        private, v["dcr_id"], v["node_name"], v["manifest_hash"], h(v["sealed"]))
                self.assertEqual(info.hex(), v["info"])
                if v["valid"]:
                    self.assertEqual(opener().hex(), v["key"])
                    valid += 1
                else:
                    with self.assertRaises(IntegrityError):
                        opener()
        self.assertGreaterEqual(valid, 2)

        # The valid dataset key is bound to the "5 bytes" ciphertext and decrypts it.
        five = next(v for v in vectors["stream"] if v["name"] == "5 bytes")
        ds = next(v for v in sk["vectors"] if v["valid"] and "dcr_id" in v)
        self.assertEqual(ds["manifest_hash"], five["ciphertext_sha256"])
        key = crypto.open_dataset_key(private, ds["dcr_id"], ds["node_name"], ds["manifest_hash"], h(ds["sealed"]))
        self.assertEqual(crypto.decrypt(h(five["ciphertext"]), key, crypto.DATASET_AD), plaintext(5))

    def test_seal_and_open(self) -> None:
        private = os.urandom(32)
        public = crypto.public_key_of(private)
        key, dcr, mh = os.urandom(32), "ab" * 32, "cd" * 32
        sealed = crypto.seal_dataset_key(public, dcr, "input_data_node", mh, key)
        self.assertEqual(len(sealed), 80)
        self.assertEqual(crypto.open_dataset_key(private, dcr, "input_data_node", mh, sealed), key)
        with self.assertRaises(IntegrityError):
            crypto.open_dataset_key(private, dcr, "other_node", mh, sealed)
        with self.assertRaises(ValueError):
            crypto.dataset_key_info("AB" * 32, "n", mh)  # uppercase hex would bind differently
        with self.assertRaises(ValueError):
            crypto.dataset_key_info(dcr, "a\x00b", mh)


class RFC9180Test(unittest.TestCase):
    """RFC 9180 Appendix A.1.1: base mode, DHKEM(X25519, HKDF-SHA256),
    HKDF-SHA256, AES-128-GCM."""

    # The RFC's ephemeral private key skEm of A.1.1 (its public key is `enc`).
    SK_EM = h("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736")

    @classmethod
    def setUpClass(cls) -> None:
        with open(TESTDATA / "rfc9180-a1.json") as f:
            cls.v = json.load(f)

    def test_suite(self) -> None:
        self.assertEqual((self.v["mode"], self.v["kem_id"], self.v["kdf_id"], self.v["aead_id"]), (0,) + crypto.HPKE_SUITE)
        self.assertEqual(crypto.public_key_of(h(self.v["skRm"])).hex(), self.v["pkRm"])
        self.assertEqual(crypto.public_key_of(self.SK_EM).hex(), self.v["enc"])

    def test_seal_with_fixed_ephemeral_key(self) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        ephemeral = X25519PrivateKey.from_private_bytes(self.SK_EM)
        enc, ctx = crypto._setup_sender(h(self.v["pkRm"]), h(self.v["info"]), ephemeral)
        self.assertEqual(enc.hex(), self.v["enc"])
        for e in self.v["encryptions"]:
            self.assertEqual(ctx.seq, e["seq"])
            self.assertEqual(ctx.seal(h(e["aad"]), h(e["pt"])).hex(), e["ct"])

    def test_open(self) -> None:
        ctx = crypto._setup_receiver(h(self.v["enc"]), h(self.v["skRm"]), h(self.v["info"]))
        for e in self.v["encryptions"]:
            self.assertEqual(ctx.open(h(e["aad"]), h(e["ct"])).hex(), e["pt"])
        ctx = crypto._setup_receiver(h(self.v["enc"]), h(self.v["skRm"]), b"other info")
        with self.assertRaises(IntegrityError):
            ctx.open(h(self.v["encryptions"][0]["aad"]), h(self.v["encryptions"][0]["ct"]))

    def test_single_shot_hook(self) -> None:
        sealed = crypto.seal(h(self.v["pkRm"]), h(self.v["info"]), b"secret", _ephemeral_private_key=self.SK_EM)
        self.assertEqual(sealed[:32].hex(), self.v["enc"])
        self.assertEqual(crypto.open_sealed(h(self.v["skRm"]), h(self.v["info"]), sealed), b"secret")


# A small Go program over the repository's crypt package, so each direction
# is checked against the Go implementation itself with fresh random salts,
# nonce prefixes and ephemeral keys, beyond the fixed vectors.
GO_TOOL = textwrap.dedent("""\
    package main

    import (
    	"crypto/sha256"
    	"encoding/hex"
    	"fmt"
    	"io"
    	"os"
    	"strconv"

    	"github.com/cleanroom-dev/cleanroom/crypt"
    )

    func unhex(s string) []byte {
    	b, err := hex.DecodeString(s)
    	if err != nil {
    		panic(err)
    	}
    	return b
    }

    func main() {
    	a := os.Args[1:]
    	switch a[0] {
    	case "encrypt": // key ad size out: the rule plaintext, encrypted with random salt and prefix
    		n, _ := strconv.Atoi(a[3])
    		f, _ := os.Create(a[4])
    		w, err := crypt.NewEncryptWriter(f, unhex(a[1]), unhex(a[2]))
    		if err != nil {
    			panic(err)
    		}
    		for i := 0; i < n; i++ {
    			w.Write([]byte{byte(i % 251)})
    		}
    		if err := w.Close(); err != nil {
    			panic(err)
    		}
    		f.Close()
    	case "decrypt": // key ad in: prints size and sha256 of the plaintext
    		f, _ := os.Open(a[3])
    		r, err := crypt.NewDecryptReader(f, unhex(a[1]), unhex(a[2]))
    		if err != nil {
    			panic(err)
    		}
    		h := sha256.New()
    		n, err := io.Copy(h, r)
    		if err != nil {
    			fmt.Println("error", err)
    			os.Exit(3)
    		}
    		fmt.Println(n, hex.EncodeToString(h.Sum(nil)))
    	case "seal": // pub dcr node hash key: prints the sealed key
    		s, err := crypt.SealDatasetKey(unhex(a[1]), a[2], a[3], a[4], unhex(a[5]))
    		if err != nil {
    			panic(err)
    		}
    		fmt.Println(hex.EncodeToString(s))
    	case "open": // priv dcr node hash sealed: prints the key
    		k, err := crypt.ParsePrivateKey(unhex(a[1]))
    		if err != nil {
    			panic(err)
    		}
    		key, err := k.OpenDatasetKey(a[2], a[3], a[4], unhex(a[5]))
    		if err != nil {
    			fmt.Println("error", err)
    			os.Exit(3)
    		}
    		fmt.Println(hex.EncodeToString(key))
    	}
    }
""")


class GoCrossTest(unittest.TestCase):
    """Go encrypts and seals, Python decrypts and opens; and the reverse."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory(prefix="cleanroom-sdk-gocross-")
        d = cls.tmp.name
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write("module cleanroomsdkcross\n\ngo 1.26.0\n\nrequire github.com/cleanroom-dev/cleanroom v0.0.0\n\n"
                    f"replace github.com/cleanroom-dev/cleanroom => {harness.REPO_DIR}\n")
        with open(harness.REPO_DIR / "go.sum", "rb") as src, open(os.path.join(d, "go.sum"), "wb") as dst:
            dst.write(src.read())
        with open(os.path.join(d, "main.go"), "w") as f:
            f.write(GO_TOOL)
        cls.tool = os.path.join(d, "gocross")
        out = subprocess.run(["go", "build", "-o", cls.tool, "."], cwd=d, capture_output=True, text=True,
                             env=dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off"))
        if out.returncode != 0:
            raise RuntimeError(f"building the Go cross-check tool failed:\n{out.stderr}")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def go(self, *args: str) -> str:
        out = subprocess.run([self.tool, *args], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out.stdout.strip()

    SIZES = (0, 5, crypto.FIRST_SEGMENT_PLAINTEXT, crypto.FIRST_SEGMENT_PLAINTEXT + crypto.SEGMENT_PLAINTEXT + 7)

    def test_go_encrypts_python_decrypts(self) -> None:
        key = os.urandom(32)
        for size in self.SIZES:
            with self.subTest(size=size):
                path = os.path.join(self.tmp.name, "go.ct")
                self.go("encrypt", key.hex(), crypto.DATASET_AD.hex(), str(size), path)
                with open(path, "rb") as f:
                    pt = b"".join(crypto.decrypt_stream(f, key, crypto.DATASET_AD))
                self.assertEqual(pt, plaintext(size))

    def test_python_encrypts_go_decrypts(self) -> None:
        key = os.urandom(32)
        for size in self.SIZES:
            with self.subTest(size=size):
                path = os.path.join(self.tmp.name, "py.ct")
                pt = plaintext(size)
                with open(path, "wb") as f:
                    for piece in crypto.encrypt_stream(io.BytesIO(pt), key, crypto.DATASET_AD):
                        f.write(piece)
                self.assertEqual(self.go("decrypt", key.hex(), crypto.DATASET_AD.hex(), path),
                                 f"{size} {hashlib.sha256(pt).hexdigest()}")

    def test_go_seals_python_opens_and_back(self) -> None:
        private = os.urandom(32)
        public = crypto.public_key_of(private)
        key, dcr, mh = os.urandom(32), "0f" * 32, "e1" * 32
        sealed = h(self.go("seal", public.hex(), dcr, "input_data_node", mh, key.hex()))
        self.assertEqual(crypto.open_dataset_key(private, dcr, "input_data_node", mh, sealed), key)
        sealed = crypto.seal_dataset_key(public, dcr, "input_data_node", mh, key)
        self.assertEqual(self.go("open", private.hex(), dcr, "input_data_node", mh, sealed.hex()), key.hex())


class AuditHashTest(unittest.TestCase):
    # Made by Go (cleanroom.AuditEntry.ComputeHash): Go's JSON escapes,
    # non-ASCII left as is, and a time whose JSON drops trailing zeros.
    ENTRY = {"seq": 2, "at": "2026-01-02T03:04:05.12Z", "actor": "o'brien&co@example.com", "action": "dataset.published",
             "node": "data", "detail": "caf\u00e9 <b> \u2028", "prev": "ab",
             "hash": "57059b624c0b7e7801506d70333d1c76a9239cf68c0ccbde02d4d9f4b3481602"}

    def test_hash_equals_go(self) -> None:
        from cleanroom.client import audit_hash
        self.assertEqual(audit_hash("room", self.ENTRY), self.ENTRY["hash"])
        self.assertNotEqual(audit_hash("another room", self.ENTRY), self.ENTRY["hash"])



class FileKeyTest(unittest.TestCase):
    """A file key (what a sealed download carries) opens its own ciphertext
    and no other made with the same key and associated data."""

    def test_file_key(self) -> None:
        key, ad = bytes(range(32)), crypto.result_ad("job")
        plaintext = os.urandom(3 << 20)
        one, other = crypto.encrypt(plaintext, key, ad), crypto.encrypt(b"other", key, ad)
        salt = one[1:1 + crypto.SALT_SIZE]
        file_key = crypto._hkdf_expand(crypto._hkdf_extract(salt, key), ad, 32)
        self.assertEqual(b"".join(crypto.decrypt_stream_with_file_key(io.BytesIO(one), file_key)), plaintext)
        with self.assertRaises(IntegrityError):
            b"".join(crypto.decrypt_stream_with_file_key(io.BytesIO(other), file_key))
        tampered = bytearray(one)
        tampered[len(tampered) // 2] ^= 1
        with self.assertRaises(IntegrityError):
            b"".join(crypto.decrypt_stream_with_file_key(io.BytesIO(bytes(tampered)), file_key))
        self.assertEqual(crypto.download_key_info(ad), b"cleanroom download key v1\x00" + ad)


if __name__ == "__main__":
    unittest.main()
