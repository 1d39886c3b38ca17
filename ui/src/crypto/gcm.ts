// AES-GCM sealing of large messages, byte for byte what Web Crypto's
// AES-GCM gives, at twice its speed in Chromium. Chromium copies the input
// of every Web Crypto call and allocates its output; past 960 KiB both
// take a slow path of the allocator (fresh pages, every call), and a 1 MiB
// segment seals at ~0.7 GB/s where 256 KiB pieces go at ~1.7 GB/s. GCM is
// CTR encryption plus a GHASH of the ciphertext (NIST SP 800-38D), so a
// segment is sealed as:
//
//   - its pieces of PIECE bytes encrypted with AES-CTR from inc32(J0);
//   - each piece's GHASH taken from AES-GCM sealing nothing with the piece
//     as additional data, under the same key and nonce:
//       T_j = GHASH_H(x_j, [8|x_j|]_64 || 0^64) ⊕ E_K(J0);
//   - E_K(J0) from AES-GCM sealing nothing at all (its GHASH is 0);
//   - the tag combined in GF(2^128), as GHASH is linear: with B_j the
//     blocks after piece j and L_j, L the length blocks above and below,
//       S = Σ_j (T_j ⊕ E_K(J0) ⊕ L_j·H)·H^B_j ⊕ L·H,   tag = S ⊕ E_K(J0)
//     where L = 0^64 || [8n]_64 and H = E_K(0^128).
//
// Pieces other than the last are whole blocks, so their blocks are the
// ciphertext's. The tests check the result against Web Crypto's AES-GCM
// on sizes around every boundary and against the shared vectors.

const PIECE = 256 << 10; // bytes, a multiple of 16, well under 960 KiB
const PIECE_BLOCKS = PIECE / 16;

/** A GF(2^128) element in GCM's bit order, as four big-endian words. */
type Elem = Uint32Array;

function fromBytes(b: Uint8Array): Elem {
  const v = new DataView(b.buffer, b.byteOffset, 16);
  return Uint32Array.of(v.getUint32(0), v.getUint32(4), v.getUint32(8), v.getUint32(12));
}

function xor(a: Elem, b: Elem): Elem {
  return Uint32Array.of(a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]);
}

/** mul is SP 800-38D Algorithm 1: x·y in GCM's field. */
function mul(x: Elem, y: Elem): Elem {
  let z0 = 0, z1 = 0, z2 = 0, z3 = 0;
  let v0 = y[0], v1 = y[1], v2 = y[2], v3 = y[3];
  for (let i = 0; i < 128; i++) {
    if ((x[i >>> 5] >>> (31 - (i & 31))) & 1) {
      z0 ^= v0;
      z1 ^= v1;
      z2 ^= v2;
      z3 ^= v3;
    }
    const lsb = v3 & 1;
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = v0 >>> 1;
    if (lsb) v0 ^= 0xe1000000;
  }
  return Uint32Array.of(z0, z1, z2, z3);
}

/** lengthBlock returns [hi]_64 || [lo]_64 for bit counts below 2^53. */
function lengthBlock(hi: number, lo: number): Elem {
  return Uint32Array.of(Math.floor(hi / 2 ** 32), hi >>> 0, Math.floor(lo / 2 ** 32), lo >>> 0);
}

// Chromium keeps the memory of a Web Crypto result until its garbage
// collector runs, whatever the page does with the ArrayBuffer (detaching
// it with transfer() included), so every piece lands in fresh pages: a
// page fault per 4 KiB, nearly half the CPU of sealing. Posting the result
// with transfer to a port whose other end is closed detaches it (the HTML
// standard serializes, and so detaches, before it checks where the message
// goes) and drops the message; Chromium then frees the memory at once, and
// the next result reuses it: a 1 GiB file seals with ~2 k page faults
// instead of ~265 k, at over twice the speed. Only the speed depends on it.
let sink: MessagePort | undefined;

/** release frees b's memory now, where the browser lets it; b is detached
 * (length 0) after. */
function release(b: ArrayBuffer) {
  if (!sink) {
    const ch = new MessageChannel();
    ch.port2.close();
    sink = ch.port1;
  }
  sink.postMessage(null, [b]);
  // A browser that stopped taking messages on the sink did not detach b:
  // a new sink for the next one.
  if (b.byteLength !== 0) sink = undefined;
}

export class GcmSealer {
  private readonly powers = new Map<number, Elem>();

  private constructor(
    private readonly ctr: CryptoKey,
    private readonly gcm: CryptoKey,
    private readonly h: Elem,
  ) {}

  /** create makes a sealer for a raw AES key (16 or 32 bytes). */
  static async create(raw: Uint8Array<ArrayBuffer>): Promise<GcmSealer> {
    const ctr = await crypto.subtle.importKey("raw", raw, "AES-CTR", false, ["encrypt"]);
    const gcm = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
    const h = await crypto.subtle.encrypt({ name: "AES-CTR", counter: new Uint8Array(16), length: 32 }, ctr, new Uint8Array(16));
    return new GcmSealer(ctr, gcm, fromBytes(new Uint8Array(h)));
  }

  /** power returns H^e, remembering it: a sealer sees few distinct e. */
  private power(e: number): Elem {
    let p = this.powers.get(e);
    if (!p) {
      p = Uint32Array.of(0x80000000, 0, 0, 0); // 1
      for (let base = this.h, k = e; k > 0; k >>>= 1, base = mul(base, base)) if (k & 1) p = mul(p, base);
      this.powers.set(e, p);
    }
    return p;
  }

  /** sealInto writes plaintext sealed with AES-GCM under the 12-byte
   * nonce iv (no additional data, 16-byte tag) to out: the ciphertext,
   * then the tag, plaintext.length + 16 bytes. */
  async sealInto(iv: Uint8Array<ArrayBuffer>, plaintext: Uint8Array<ArrayBuffer>, out: Uint8Array<ArrayBuffer>): Promise<void> {
    const n = plaintext.length;
    if (iv.length !== 12) throw new Error("GCM nonce must be 12 bytes");
    if (out.length < n + 16) throw new Error("GCM output too small");
    const pieces = Math.ceil(n / PIECE);
    const counter = (j: number) => {
      const c = new Uint8Array(16);
      c.set(iv);
      new DataView(c.buffer).setUint32(12, 2 + j * PIECE_BLOCKS); // inc32(J0), then on
      return c;
    };
    const cts = await Promise.all(
      Array.from({ length: pieces }, (_, j) => crypto.subtle.encrypt({ name: "AES-CTR", counter: counter(j), length: 32 }, this.ctr, plaintext.subarray(j * PIECE, (j + 1) * PIECE))),
    );
    cts.forEach((ct, j) => {
      out.set(new Uint8Array(ct), j * PIECE);
      release(ct);
    });
    const [e, ...tags] = await Promise.all([
      crypto.subtle.encrypt({ name: "AES-GCM", iv, tagLength: 128 }, this.gcm, new Uint8Array(0)),
      ...cts.map((_, j) => crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: out.subarray(j * PIECE, Math.min(n, (j + 1) * PIECE)), tagLength: 128 }, this.gcm, new Uint8Array(0))),
    ]);
    const ej0 = fromBytes(new Uint8Array(e));
    let s = mul(lengthBlock(0, 8 * n), this.h);
    let after = 0; // blocks after piece j
    for (let j = pieces - 1; j >= 0; j--) {
      const len = Math.min(n, (j + 1) * PIECE) - j * PIECE;
      const g = xor(xor(fromBytes(new Uint8Array(tags[j])), ej0), mul(lengthBlock(8 * len, 0), this.h));
      s = xor(s, after ? mul(g, this.power(after)) : g);
      after += Math.ceil(len / 16);
    }
    const tag = xor(s, ej0);
    const v = new DataView(out.buffer, out.byteOffset + n, 16);
    tag.forEach((w, k) => v.setUint32(4 * k, w));
  }
}
