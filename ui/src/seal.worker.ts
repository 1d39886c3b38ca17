// Seals a share of a file's ciphertext, off the page's main thread: of the
// ciphertext's parts (a few segments each), the ones whose number modulo
// `workers` is `index`. Web Crypto encrypts on the calling worker's own
// thread, so several seal workers use several cores. Each part's plaintext
// is read in one piece into a buffer this worker reuses, and its segments
// sealed (crypto/gcm.ts) into one buffer, which is transferred, not
// copied, through `port` to the upload worker; it sends
// the parts in order and gives each buffer back once sent. At most AHEAD
// parts of this worker are sealed and not yet sent (two, so that sealing
// goes on while the network is busy), so memory stays flat whatever the
// file size: about 100 MiB per worker.

import { readInto } from "./read";
import { HEADER_SIZE, SEGMENT_SIZE, SegmentEncrypter, TAG_SIZE, plaintextRange, segmentCount } from "./crypto/stream";

export interface SealRequest {
  file: Blob;
  key: Uint8Array<ArrayBuffer>;
  ad: Uint8Array<ArrayBuffer>;
  /** The ciphertext's salt and nonce prefix, shared by every seal worker. */
  salt: Uint8Array<ArrayBuffer>;
  prefix: Uint8Array<ArrayBuffer>;
  index: number;
  workers: number;
  /** Segments per part. */
  perPart: number;
  /** To the upload worker: SealMessages out, and back the buffer of each part taken once it is sent. */
  port: MessagePort;
}

/** A sealed part (part 0 starts with the ciphertext's header), or why sealing failed. */
export type SealMessage = { part: number; bytes: Uint8Array<ArrayBuffer> } | { error: string };

const AHEAD = 2;

async function sealShare({ file, key, ad, salt, prefix, index, workers, perPart, port }: SealRequest) {
  const enc = await SegmentEncrypter.create(key, ad, salt, prefix);
  const size = file.size;
  const n = segmentCount(size);
  const parts = Math.ceil(n / perPart);
  let credit = AHEAD;
  let wake = () => {};
  const spare: ArrayBuffer[] = []; // part buffers given back
  port.onmessage = (ev: MessageEvent<ArrayBuffer>) => {
    spare.push(ev.data);
    credit++;
    wake();
  };
  const partSize = HEADER_SIZE + perPart * SEGMENT_SIZE;
  let buf = new ArrayBuffer(perPart * SEGMENT_SIZE);
  for (let p = index; p < parts; p += workers) {
    while (credit === 0) await new Promise<void>((r) => (wake = r));
    credit--;
    const first = p * perPart;
    const last = Math.min(n, first + perPart) - 1;
    const start = plaintextRange(first, size)[0];
    buf = await readInto(file.slice(start, plaintextRange(last, size)[1]), buf);
    // Seal the segments straight into the part's buffer, after the header.
    const out = new Uint8Array(spare.pop() ?? new ArrayBuffer(partSize));
    let len = 0;
    if (p === 0) {
      out.set(enc.header);
      len = enc.header.length;
    }
    for (let i = first; i <= last; i++) {
      const [s, e] = plaintextRange(i, size);
      await enc.sealInto(i, new Uint8Array(buf, s - start, e - s), i === n - 1, out.subarray(len));
      len += e - s + TAG_SIZE;
    }
    port.postMessage({ part: p, bytes: out.subarray(0, len) } satisfies SealMessage, [out.buffer]);
  }
}

onmessage = (ev: MessageEvent<SealRequest>) => {
  sealShare(ev.data).catch((err) => ev.data.port.postMessage({ error: String(err?.message ?? err) } satisfies SealMessage));
};
