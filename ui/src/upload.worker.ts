// Encrypts a file and sends it as it goes, off the page's main thread.
// The ciphertext is cut into parts of a few segments: each part's
// plaintext is read from the file in one piece, its segments sealed by Web
// Crypto, and the part handed on (to the server, as a part of a
// multi-part upload, or to the caller) while its segments go to the hash
// worker (hash.worker.ts), which computes the manifest hash beside. The
// stages overlap (reading and sealing the next parts, hashing, sending)
// and each holds at most a few parts, so memory stays flat whatever the
// file size.

import { ApiError, api, setCSRF } from "./api";
import { SEGMENT_SIZE, SegmentEncrypter, ciphertextSize, plaintextRange, segmentCount } from "./crypto/stream";

export interface EncryptRequest {
  file: Blob;
  key: Uint8Array<ArrayBuffer>;
  ad: Uint8Array<ArrayBuffer>;
  hashPort: MessagePort; // to the hash worker
  /** Where parts go: PUT to this multi-part upload, or back to the caller. */
  upload?: { id: string; csrf: string };
  /** Ciphertext bytes per part, rounded down to whole segments. */
  partSize: number;
}

export type EncryptMessage =
  | { type: "progress"; done: number; total: number } // bytes sent (or, without upload, sealed)
  | { type: "part"; index: number; blob: Blob } // without upload: the parts, in order
  | { type: "done"; hash: string; size: number }
  | { type: "error"; message: string; status?: number; code?: string }; // code and status: the server's answer

// The bounds of the queues between the stages, in parts.
const SEALING = 1; // being read and sealed ahead of the one handed on
const QUEUED = 1; // sealed and waiting for the server, besides the one being sent
const HASHING = 2; // handed to the hash worker and not yet hashed

/** A counter that can be waited on until it reaches a value. */
class Counter {
  n = 0;
  private waiters: { at: number; wake: () => void }[] = [];
  add(d: number) {
    this.n += d;
    this.waiters = this.waiters.filter((w) => (this.n >= w.at ? (w.wake(), false) : true));
  }
  reach(at: number): Promise<void> {
    return this.n >= at ? Promise.resolve() : new Promise((wake) => this.waiters.push({ at, wake }));
  }
}

async function encrypt({ file, key, ad, hashPort, upload, partSize }: EncryptRequest): Promise<void> {
  const perPart = Math.max(1, Math.floor(partSize / SEGMENT_SIZE));
  const enc = await SegmentEncrypter.create(key, ad);
  const size = file.size;
  const n = segmentCount(size);
  const parts = Math.ceil(n / perPart);
  const total = ciphertextSize(size);

  const hashed = new Counter(); // parts the hash worker is done with
  const digest = new Promise<string>((resolve) => {
    hashPort.onmessage = (m: MessageEvent<number | string>) => (typeof m.data === "string" ? resolve(m.data) : hashed.add(1));
  });

  // Read part p's plaintext in one piece and seal its segments; part 0
  // starts with the header.
  const seal = async (p: number): Promise<Uint8Array<ArrayBuffer>[]> => {
    const first = p * perPart;
    const last = Math.min(n, first + perPart) - 1;
    const start = plaintextRange(first, size)[0];
    const plain = await file.slice(start, plaintextRange(last, size)[1]).arrayBuffer();
    const segs: Promise<Uint8Array<ArrayBuffer>>[] = [];
    for (let i = first; i <= last; i++) {
      const [s, e] = plaintextRange(i, size);
      segs.push(enc.seal(i, new Uint8Array(plain, s - start, e - s), i === n - 1));
    }
    const out = await Promise.all(segs);
    if (p === 0) out.unshift(enc.header.slice());
    return out;
  };

  // The sender: PUTs the parts in order, one at a time.
  const queue: Blob[] = [];
  const sent = new Counter();
  let sentBytes = 0;
  let wakeSender = () => {};
  let failed: unknown = null;
  if (upload) setCSRF(upload.csrf);
  const sender = (async () => {
    for (let p = 0; p < parts; p++) {
      while (!queue.length) await new Promise<void>((r) => (wakeSender = r));
      const part = queue.shift()!;
      if (upload) await api("PUT", `/api/v1/uploads/${encodeURIComponent(upload.id)}/parts/${p}`, undefined, { raw: part });
      else postMessage({ type: "part", index: p, blob: part } satisfies EncryptMessage);
      sentBytes += part.size;
      sent.add(1);
      postMessage({ type: "progress", done: sentBytes, total } satisfies EncryptMessage);
    }
  })().catch((err) => {
    failed = err;
    sent.add(Infinity); // wakes the producer, which then stops
  });

  const sealing: Promise<Uint8Array<ArrayBuffer>[]>[] = [];
  let next = 0;
  while (next < Math.min(parts, SEALING)) sealing.push(seal(next++));
  for (let p = 0; p < parts; p++) {
    const segs = await sealing.shift()!;
    // Bounded queues: wait for the server and the hash worker to catch up.
    await Promise.all([sent.reach(p - QUEUED), hashed.reach(p + 1 - HASHING)]);
    if (failed) break;
    if (next < parts) sealing.push(seal(next++));
    // A Blob copies the segments, which can then move on to the hash
    // worker. (A body of bytes was no faster in Chromium, and crawls
    // under DevTools network tracking, as in Playwright.)
    queue.push(new Blob(segs, { type: "application/octet-stream" }));
    wakeSender();
    hashPort.postMessage(segs, segs.map((s) => s.buffer));
  }
  await sender;
  if (failed) throw failed;
  hashPort.postMessage(null);
  if (sentBytes !== total) throw new Error(`encrypted ${sentBytes} bytes, expected ${total}`);
  postMessage({ type: "done", hash: await digest, size: sentBytes } satisfies EncryptMessage);
}

onmessage = (ev: MessageEvent<EncryptRequest>) => {
  encrypt(ev.data).catch((err) => {
    const m: EncryptMessage = { type: "error", message: String(err?.message ?? err) };
    if (err instanceof ApiError) Object.assign(m, { status: err.status, code: err.code });
    postMessage(m);
  });
};
