// Encrypts a file for upload off the page's main thread: segments are
// read from the file, sealed by Web Crypto a few at a time, gathered in
// order into a Blob, which the browser keeps outside the JavaScript heap
// (on disk when large), and handed to the hash worker (hash.worker.ts),
// which computes the manifest hash beside. Memory stays flat whatever the
// file size.

import { SegmentEncrypter, ciphertextSize, plaintextRange, segmentCount } from "./crypto/stream";

export interface EncryptRequest {
  file: Blob;
  key: Uint8Array<ArrayBuffer>;
  ad: Uint8Array<ArrayBuffer>;
  hashPort: MessagePort; // to the hash worker
}

export type EncryptMessage =
  | { type: "progress"; done: number; total: number }
  | { type: "done"; blob: Blob; hash: string }
  | { type: "error"; message: string };

const IN_FLIGHT = 8; // segments being read and sealed at once
const GROUP = 16; // segments per Blob part

async function encrypt({ file, key, ad, hashPort }: EncryptRequest): Promise<void> {
  const enc = await SegmentEncrypter.create(key, ad);
  const hashed = new Promise<string>((r) => (hashPort.onmessage = (m) => r(m.data)));
  hashPort.postMessage(enc.header);
  const n = segmentCount(file.size);
  const total = ciphertextSize(file.size);
  const seal = async (i: number) => {
    const [s, e] = plaintextRange(i, file.size);
    return enc.seal(i, await file.slice(s, e).arrayBuffer(), i === n - 1);
  };
  const pending: Promise<Uint8Array<ArrayBuffer>>[] = [];
  let next = 0;
  while (next < n && pending.length < IN_FLIGHT) pending.push(seal(next++));
  const blobs: Blob[] = [new Blob([enc.header])];
  let group: Uint8Array<ArrayBuffer>[] = [];
  let done = enc.header.length;
  for (let i = 0; i < n; i++) {
    const seg = await pending.shift()!;
    if (next < n) pending.push(seal(next++));
    group.push(seg);
    done += seg.length;
    if (group.length === GROUP) {
      blobs.push(new Blob(group)); // copies: the segments can move on
      for (const g of group) hashPort.postMessage(g, [g.buffer]);
      group = [];
    }
    postMessage({ type: "progress", done, total } satisfies EncryptMessage);
  }
  if (group.length) blobs.push(new Blob(group));
  for (const g of group) hashPort.postMessage(g, [g.buffer]);
  hashPort.postMessage(null);
  const blob = new Blob(blobs, { type: "application/octet-stream" });
  if (blob.size !== total) throw new Error(`encrypted ${blob.size} bytes, expected ${total}`);
  postMessage({ type: "done", blob, hash: await hashed } satisfies EncryptMessage);
}

onmessage = (ev: MessageEvent<EncryptRequest>) => {
  encrypt(ev.data).catch((err) => postMessage({ type: "error", message: String(err?.message ?? err) } satisfies EncryptMessage));
};
