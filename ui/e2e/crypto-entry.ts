// Browser side of the cross-implementation crypto test (crypto.mjs): the
// UI's own crypto code checked against crypt/testdata/vectors.json, RFC
// 9180 A.1, and ciphertexts and sealed keys made by Go.

import { concat, fromBase64, fromHex, hex, toBase64, utf8 } from "../src/crypto/bytes";
import { datasetKeyInfo, importPrivateKey, nonceFor, open, resultKeyInfo, seal, setupReceiver } from "../src/crypto/hpke";
import { DATASET_AD, IntegrityError, SEGMENT_SIZE, decryptBlob, encryptBlob } from "../src/crypto/stream";
import { encryptFile } from "../src/upload";
import { GcmSealer } from "../src/crypto/gcm";
import { readInto } from "../src/read";
import { auditExtends, auditHash, verifyAuditLog } from "../src/audit";
import type { AuditEntry } from "../src/types";

function rulePlaintext(n: number): Uint8Array<ArrayBuffer> {
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = i % 251;
  return p;
}

async function sha256(b: BufferSource): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", b)));
}

async function decryptAll(ct: Blob, key: Uint8Array<ArrayBuffer>, ad: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array[] = [];
  await decryptBlob(ct, key, ad, (p) => void parts.push(p));
  return concat(...parts);
}

const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** runVectors checks every vector and returns the failures (empty: all pass). */
async function runVectors(v: Any, rfc: Any): Promise<{ failures: string[]; checked: number }> {
  const failures: string[] = [];
  let checked = 0;
  const fail = (m: string) => failures.push(m);
  const ciphertexts: Record<string, Uint8Array<ArrayBuffer>> = {};
  for (const s of v.stream) {
    const pt = rulePlaintext(s.plaintext_size);
    if (s.plaintext && hex(pt) !== s.plaintext) fail(`${s.name}: plaintext rule`);
    const ct = await encryptBlob(new Blob([pt]), fromHex(s.key), fromHex(s.associated_data), fromHex(s.salt), fromHex(s.nonce_prefix));
    ciphertexts[s.name] = ct;
    if (ct.length !== s.ciphertext_size) fail(`${s.name}: size ${ct.length}, want ${s.ciphertext_size}`);
    if ((await sha256(ct)) !== s.ciphertext_sha256) fail(`${s.name}: ciphertext hash differs`);
    if (s.ciphertext && hex(ct) !== s.ciphertext) fail(`${s.name}: ciphertext differs`);
    const back = await decryptAll(new Blob([ct]), fromHex(s.key), fromHex(s.associated_data));
    if (!eq(back, pt)) fail(`${s.name}: decryption differs`);
    checked++;
  }
  for (const f of v.stream_failures) {
    const b = v.stream.find((s: Any) => s.name === f.base);
    let ct = ciphertexts[f.base].slice();
    if (f.flip_byte !== undefined) ct[f.flip_byte] ^= 1;
    if (f.truncate_to !== undefined) ct = ct.slice(0, f.truncate_to);
    if (f.append !== undefined) ct = concat(ct, fromHex(f.append));
    if (f.ciphertext && hex(ct) !== f.ciphertext) fail(`${f.name}: mutated ciphertext differs`);
    const key = fromHex(f.key ?? b.key);
    const ad = fromHex(f.associated_data ?? b.associated_data);
    try {
      await decryptAll(new Blob([ct]), key, ad);
      fail(`${f.name}: decrypted, want an integrity error`);
    } catch (e) {
      if (!(e instanceof IntegrityError)) fail(`${f.name}: ${e}, want an integrity error`);
    }
    checked++;
  }
  const sk = v.sealed_keys;
  const skR = await importPrivateKey(fromHex(sk.enclave_private_key));
  const pkR = fromHex(sk.enclave_public_key);
  for (const s of sk.vectors) {
    const info = s.job_id ? resultKeyInfo(s.job_id) : datasetKeyInfo(s.dcr_id, s.node_name, s.manifest_hash);
    if (hex(info) !== s.info) fail(`${s.name}: info differs`);
    let key: Uint8Array | null = null;
    try {
      key = await open(skR, pkR, info, fromHex(s.sealed));
      if (!s.job_id && key.length !== 32) key = null;
    } catch {
      key = null;
    }
    if (s.valid && (!key || hex(key) !== s.key)) fail(`${s.name}: does not open to its key`);
    if (!s.valid && key) fail(`${s.name}: opened, want a failure`);
    checked++;
  }
  // RFC 9180 A.1.1: the receiver's context reproduces the RFC's ciphertexts.
  const rskR = await importPrivateKey(fromHex(rfc.skRm));
  const ctx = await setupReceiver(rskR, fromHex(rfc.pkRm), fromHex(rfc.enc), fromHex(rfc.info));
  for (const e of rfc.encryptions) {
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonceFor(ctx, e.seq), additionalData: fromHex(e.aad), tagLength: 128 }, ctx.key, fromHex(e.pt)));
    if (hex(ct) !== e.ct) fail(`RFC 9180 A.1.1 seq ${e.seq}: ciphertext differs`);
    checked++;
  }
  // Seal then open with our own code.
  const kp = (await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", kp.publicKey));
  const msg = utf8("a 32-byte key, or something else");
  const sealed = await seal(pub, utf8("info"), msg);
  if (sealed.length !== 32 + msg.length + 16 || !eq(await open(kp.privateKey, pub, utf8("info"), sealed), msg)) fail("seal/open round trip");
  checked++;
  return { failures, checked };
}

/** decryptGo decrypts a dataset ciphertext Go made, returning the
 * plaintext's SHA-256 and size. */
async function decryptGo(url: string, keyHex: string): Promise<{ sha256: string; size: number }> {
  const ct = await (await fetch(url)).blob();
  const pt = await decryptAll(ct, fromHex(keyHex), DATASET_AD);
  return { sha256: await sha256(pt), size: pt.length };
}

/** encryptForGo encrypts a rule plaintext the way an upload does (in the
 * upload worker, with its manifest hash, here one segment per part so
 * that the parts' boundaries are crossed) and seals the key to pubHex. */
async function encryptForGo(size: number, pubHex: string, dcrID: string, node: string) {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const { blob, hash } = await encryptFile(new Blob([rulePlaintext(size)]), key, 1);
  const sealed = await seal(fromHex(pubHex), datasetKeyInfo(dcrID, node, hash), key);
  return { ciphertext: toBase64(new Uint8Array(await blob.arrayBuffer())), manifest_hash: hash, key: hex(key), sealed: toBase64(sealed) };
}

/** checkGcm seals messages of sizes around every boundary of GcmSealer
 * (a block, a piece, a segment) with it and with Web Crypto's AES-GCM,
 * under random keys and nonces, and returns the sizes where they differ. */
async function checkGcm(): Promise<{ failures: string[]; checked: number }> {
  const piece = 256 << 10;
  const sizes = [0, 1, 15, 16, 17, 31, 32, 33, 1000, piece - 17, piece - 16, piece - 1, piece, piece + 1, piece + 16, 2 * piece - 1, 2 * piece + 5, 4 * piece - 16, 4 * piece - 56, 4 * piece, 5 * piece + 3];
  const failures: string[] = [];
  for (const [k, n] of sizes.entries()) {
    const raw = crypto.getRandomValues(new Uint8Array(k % 2 ? 16 : 32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const pt = rulePlaintext(n);
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
    const want = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, tagLength: 128 }, key, pt));
    const got = new Uint8Array(n + 16 + 7).fill(0xaa); // room after the tag must stay untouched
    await (await GcmSealer.create(raw)).sealInto(iv, pt, got.subarray(0, n + 16));
    if (!eq(got.subarray(0, n + 16), want) || !got.subarray(n + 16).every((b) => b === 0xaa)) failures.push(`${n} bytes, ${raw.length * 8}-bit key`);
  }
  return { failures, checked: sizes.length };
}

/** stallingFile is a file whose reads never answer the first `stalls`
 * times a stream is opened on it, as Chromium's sometimes do. */
function stallingFile(data: Uint8Array<ArrayBuffer>, stalls: number): Blob {
  const at = (from: number): Blob =>
    ({
      size: data.length - from,
      slice: (off: number) => at(from + off),
      stream: () => {
        const stall = stalls-- > 0;
        let pos = from;
        return new ReadableStream({
          type: "bytes",
          pull(c) {
            if (stall) return new Promise(() => {});
            const view = c.byobRequest!.view!;
            // A few bytes at a time, so that a stall can come mid-part.
            const n = Math.min(view.byteLength, 7000, data.length - pos);
            if (n === 0) return c.close();
            new Uint8Array(view.buffer, view.byteOffset, n).set(data.subarray(pos, pos + n));
            pos += n;
            c.byobRequest!.respond(n);
          },
        });
      },
    }) as unknown as Blob;
  return at(0);
}

/** checkRead reads a file whose reads stall, and one that stalls more
 * often than readInto tries, and returns what went wrong. */
async function checkRead(): Promise<string[]> {
  const failures: string[] = [];
  const data = rulePlaintext(100000);
  const got = await readInto(stallingFile(data, 2), new ArrayBuffer(120000), 50);
  if (!eq(new Uint8Array(got, 0, data.length), data)) failures.push("a read that stalled twice gave other bytes");
  try {
    await readInto(stallingFile(data, 10), new ArrayBuffer(120000), 50);
    failures.push("a read that always stalls did not fail");
  } catch (err) {
    if (!/stalled 4 times/.test(String(err))) failures.push(`a read that always stalls failed with: ${err}`);
  }
  return failures;
}

/** checkAudit verifies an audit log Go made, and the same log with one
 * entry's actor changed: the first must pass, the second fail. */
async function checkAudit(dcrID: string, log: AuditEntry[]): Promise<{ intact: string | null; changed: string | null; rewrittenAlone: string | null; rewrittenPinned: string | null }> {
  const changed = log.map((e) => ({ ...e }));
  changed[1].actor = "eve@example.com";
  // Rewritten hashes and all, it verifies alone; the entry kept shows it.
  const rewritten = changed.map((e) => ({ ...e }));
  for (let i = 1; i < rewritten.length; i++) {
    rewritten[i].prev = rewritten[i - 1].hash;
    rewritten[i].hash = await auditHash(dcrID, rewritten[i]);
  }
  const last = log[log.length - 1];
  return { intact: await verifyAuditLog(dcrID, log), changed: await verifyAuditLog(dcrID, changed), rewrittenAlone: await verifyAuditLog(dcrID, rewritten), rewrittenPinned: auditExtends(rewritten, last.seq, last.hash) };
}

Object.assign(window, { cleanroomCrypto: { runVectors, checkGcm, checkRead, checkAudit, decryptGo, encryptForGo, fromBase64 } });
