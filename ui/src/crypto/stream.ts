// Streaming dataset encryption: Tink's AES-GCM-HKDF streaming AEAD with
// 1 MiB segments (docs/formats.md, section 1), on Web Crypto. The Go client
// (crypt/) and the Python SDK write and read the same bytes.

import { concat, utf8 } from "./bytes";
import { GcmSealer } from "./gcm";

export const SEGMENT_SIZE = 1 << 20;
export const HEADER_SIZE = 40;
export const TAG_SIZE = 16;
const SALT_SIZE = 32;
const PREFIX_SIZE = 7;
/** Plaintext bytes in segment 0, which shares its space with the header. */
export const FIRST_SEGMENT_PLAINTEXT = SEGMENT_SIZE - HEADER_SIZE - TAG_SIZE;
/** Plaintext bytes in every later segment. */
export const SEGMENT_PLAINTEXT = SEGMENT_SIZE - TAG_SIZE;

/** The associated data of datasets. */
export const DATASET_AD = utf8("cleanroom dataset v1");

/** IntegrityError is the one error of every decryption failure. */
export class IntegrityError extends Error {
  constructor() {
    super("ciphertext is corrupt, truncated, or for another key");
  }
}

/** segmentCount returns how many segments a plaintext of p bytes takes. */
export function segmentCount(p: number): number {
  if (p <= FIRST_SEGMENT_PLAINTEXT) return 1;
  return 1 + Math.ceil((p - FIRST_SEGMENT_PLAINTEXT) / SEGMENT_PLAINTEXT);
}

/** ciphertextSize returns the exact ciphertext size of p plaintext bytes. */
export function ciphertextSize(p: number): number {
  return HEADER_SIZE + p + TAG_SIZE * segmentCount(p);
}

/** plaintextRange returns where segment i's plaintext lies in a plaintext. */
export function plaintextRange(i: number, p: number): [number, number] {
  const start = i === 0 ? 0 : FIRST_SEGMENT_PLAINTEXT + (i - 1) * SEGMENT_PLAINTEXT;
  const end = Math.min(p, i === 0 ? FIRST_SEGMENT_PLAINTEXT : start + SEGMENT_PLAINTEXT);
  return [start, end];
}

async function deriveSegmentKey(key: Uint8Array<ArrayBuffer>, salt: Uint8Array<ArrayBuffer>, ad: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  if (key.length !== 32) throw new Error("dataset key must be 32 bytes");
  const ikm = await crypto.subtle.importKey("raw", key, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt, info: ad }, ikm, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
}

/** segmentSealer derives the segment key as deriveSegmentKey does, for a
 * GcmSealer (which needs it as AES-CTR and AES-GCM keys both). */
async function segmentSealer(key: Uint8Array<ArrayBuffer>, salt: Uint8Array<ArrayBuffer>, ad: Uint8Array<ArrayBuffer>): Promise<GcmSealer> {
  if (key.length !== 32) throw new Error("dataset key must be 32 bytes");
  const ikm = await crypto.subtle.importKey("raw", key, "HKDF", false, ["deriveBits"]);
  const raw = new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: ad }, ikm, 256));
  try {
    return await GcmSealer.create(raw);
  } finally {
    raw.fill(0);
  }
}

function nonce(prefix: Uint8Array, i: number, last: boolean): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  n.set(prefix, 0);
  new DataView(n.buffer).setUint32(PREFIX_SIZE, i);
  n[11] = last ? 1 : 0;
  return n;
}

/** SegmentEncrypter seals the segments of one ciphertext, in any order. */
export class SegmentEncrypter {
  private constructor(
    private readonly sealer: GcmSealer,
    private readonly prefix: Uint8Array,
    /** header is the first 40 bytes of the ciphertext. */
    readonly header: Uint8Array<ArrayBuffer>,
  ) {}

  /** create makes an encrypter with a fresh random salt and nonce prefix
   * (fixed ones only for test vectors). */
  static async create(key: Uint8Array<ArrayBuffer>, ad: Uint8Array<ArrayBuffer>, salt?: Uint8Array<ArrayBuffer>, prefix?: Uint8Array<ArrayBuffer>): Promise<SegmentEncrypter> {
    salt ??= crypto.getRandomValues(new Uint8Array(SALT_SIZE));
    prefix ??= crypto.getRandomValues(new Uint8Array(PREFIX_SIZE));
    const header = concat(new Uint8Array([HEADER_SIZE]), salt, prefix);
    return new SegmentEncrypter(await segmentSealer(key, salt, ad), prefix, header);
  }

  /** sealInto encrypts segment i into out (plaintext.length + TAG_SIZE
   * bytes); last marks the final segment. */
  sealInto(i: number, plaintext: Uint8Array<ArrayBuffer>, last: boolean, out: Uint8Array<ArrayBuffer>): Promise<void> {
    return this.sealer.sealInto(nonce(this.prefix, i, last), plaintext, out);
  }

  /** seal encrypts segment i into a new array; last marks the final segment. */
  async seal(i: number, plaintext: Uint8Array<ArrayBuffer>, last: boolean): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(plaintext.length + TAG_SIZE);
    await this.sealInto(i, plaintext, last, out);
    return out;
  }
}

/** encryptBlob encrypts a whole blob into one byte array (for tests and
 * small data; uploads stream segments instead, see upload.worker.ts). */
export async function encryptBlob(data: Blob, key: Uint8Array<ArrayBuffer>, ad: Uint8Array<ArrayBuffer>, salt?: Uint8Array<ArrayBuffer>, prefix?: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const enc = await SegmentEncrypter.create(key, ad, salt, prefix);
  const n = segmentCount(data.size);
  const parts: Uint8Array[] = [enc.header];
  for (let i = 0; i < n; i++) {
    const [s, e] = plaintextRange(i, data.size);
    parts.push(await enc.seal(i, new Uint8Array(await data.slice(s, e).arrayBuffer()), i === n - 1));
  }
  return concat(...parts);
}

/** decryptBlob decrypts a ciphertext of known size segment by segment,
 * handing each verified plaintext segment to sink. It throws
 * IntegrityError on any failure; a sink must then discard what it got. */
export async function decryptBlob(ct: Blob, key: Uint8Array<ArrayBuffer>, ad: Uint8Array<ArrayBuffer>, sink: (plaintext: Uint8Array<ArrayBuffer>) => void | Promise<void>): Promise<void> {
  return decryptWith(ct, (salt) => deriveSegmentKey(key, salt, ad), sink);
}

/** decryptBlobWithFileKey is decryptBlob for a ciphertext of which only
 * its own file key is known (HKDF of the key with its salt and associated
 * data), which opens it and no other: a download is sent with it. */
export async function decryptBlobWithFileKey(ct: Blob, fileKey: Uint8Array<ArrayBuffer>, sink: (plaintext: Uint8Array<ArrayBuffer>) => void | Promise<void>): Promise<void> {
  if (fileKey.length !== 32) throw new IntegrityError();
  return decryptWith(ct, () => crypto.subtle.importKey("raw", fileKey, "AES-GCM", false, ["decrypt"]), sink);
}

async function decryptWith(ct: Blob, keyFor: (salt: Uint8Array<ArrayBuffer>) => Promise<CryptoKey>, sink: (plaintext: Uint8Array<ArrayBuffer>) => void | Promise<void>): Promise<void> {
  if (ct.size < HEADER_SIZE) throw new IntegrityError();
  const header = new Uint8Array(await ct.slice(0, HEADER_SIZE).arrayBuffer());
  if (header[0] !== HEADER_SIZE) throw new IntegrityError();
  const salt = header.slice(1, 1 + SALT_SIZE);
  const prefix = header.slice(1 + SALT_SIZE);
  const segKey = await keyFor(salt);
  const n = Math.max(1, Math.ceil(ct.size / SEGMENT_SIZE));
  if (n - 1 > 0xfffffffe) throw new IntegrityError();
  for (let i = 0; i < n; i++) {
    const start = i === 0 ? HEADER_SIZE : i * SEGMENT_SIZE;
    const end = Math.min(ct.size, (i + 1) * SEGMENT_SIZE);
    if (end - start < TAG_SIZE) throw new IntegrityError();
    const seg = await ct.slice(start, end).arrayBuffer();
    let pt: ArrayBuffer;
    try {
      pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce(prefix, i, i === n - 1), tagLength: 128 }, segKey, seg);
    } catch {
      throw new IntegrityError();
    }
    await sink(new Uint8Array(pt));
  }
}
