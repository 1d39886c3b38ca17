// Hashes the ciphertext segments the upload worker sends, in order, on a
// thread of its own so hashing runs beside encryption: the SHA-256 of the
// whole ciphertext is the manifest hash.

import { createSHA256 } from "hash-wasm";
import { hex } from "./crypto/bytes";

onmessage = async (ev: MessageEvent<{ port: MessagePort }>) => {
  const port = ev.data.port;
  const hasher = await createSHA256();
  hasher.init();
  const queue: (Uint8Array | null)[] = [];
  let waiting: (() => void) | null = null;
  port.onmessage = (m: MessageEvent<Uint8Array | null>) => {
    queue.push(m.data);
    waiting?.();
  };
  for (;;) {
    if (!queue.length) await new Promise<void>((r) => (waiting = r));
    waiting = null;
    const seg = queue.shift()!;
    if (seg === null) break;
    hasher.update(seg);
  }
  port.postMessage(hex(hasher.digest("binary")));
};
