// Hashes the ciphertext the upload worker sends, in order, on a thread of
// its own so hashing runs beside encryption and sending: the SHA-256 of
// the whole ciphertext is the manifest hash. Each message is one part's
// segments; the worker answers each with 1 once hashed (the upload worker
// keeps only a few parts waiting here), and null, the end, with the hash
// in hex.

import { createSHA256 } from "hash-wasm";
import { hex } from "./crypto/bytes";

onmessage = async (ev: MessageEvent<{ port: MessagePort }>) => {
  const port = ev.data.port;
  const hasher = await createSHA256();
  hasher.init();
  const queue: (Uint8Array[] | null)[] = [];
  let waiting: (() => void) | null = null;
  port.onmessage = (m: MessageEvent<Uint8Array[] | null>) => {
    queue.push(m.data);
    waiting?.();
  };
  for (;;) {
    if (!queue.length) await new Promise<void>((r) => (waiting = r));
    waiting = null;
    const part = queue.shift()!;
    if (part === null) break;
    for (const seg of part) hasher.update(seg);
    port.postMessage(1);
  }
  port.postMessage(hex(hasher.digest("binary")));
};
