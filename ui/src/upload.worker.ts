// Sends a ciphertext as the seal workers (seal.worker.ts) make it, off the
// page's main thread: takes their parts in order and hands each on, to the
// server over one WebSocket (GET /api/v1/blobs/stream, http/upload.go) or
// back to the caller. The server names the blob by the SHA-256 of what it
// stored. This page does not hash the ciphertext itself (Web Crypto cannot
// hash a stream; in WebAssembly, at ~400 MB/s, it cost as much CPU as
// sealing) because it need not trust that name: the key it seals is bound
// to it, and any other bytes fail authentication inside the enclave
// (every segment is authenticated, and so are their order and the last
// one).

import { errorFrom } from "./api";
import type { SealMessage } from "./seal.worker";

export interface UploadRequest {
  /** From the seal workers, in the order of their index. */
  ports: MessagePort[];
  /** Ciphertext bytes, and parts. */
  total: number;
  parts: number;
  /** Where the parts go: the stream's URL, or without it back to the caller. */
  upload?: { url: string; csrf: string };
}

export type UploadMessage =
  | { type: "progress"; done: number; total: number } // bytes the server has stored (or, without upload, sealed)
  | { type: "part"; index: number; bytes: Uint8Array<ArrayBuffer> } // without upload: the parts, in order
  | { type: "done"; blob?: { hash: string; size: number } } // with upload: the blob the server stored
  | { type: "error"; message: string; code?: string }; // code: the server's, when it gave one

/** Bytes handed to the WebSocket and not yet on their way; above it the
 * sender waits (the socket buffers whatever it is given). */
const BUFFERED = 16 << 20;

/** The largest message sent; the server takes up to 16 MiB. ws.send
 * copies each message, and Chromium's allocator gives a copy of up to
 * 960 KiB memory freed by the ones before but maps fresh pages for a
 * larger one: 8 MiB messages cost a page fault per 4 KiB sent, and the
 * browser ~0.3 CPU-s more per GiB (BenchmarkBrowserUpload). */
const MESSAGE = 512 << 10;

/** progress tells the page how far the upload is, at most every 250 ms
 * (each update costs the page a render) and at the end. */
let shown = 0;
function progress(done: number, total: number) {
  const now = performance.now();
  if (done < total && now - shown < 250) return;
  shown = now;
  postMessage({ type: "progress", done, total } satisfies UploadMessage);
}

interface ServerMessage {
  received?: number;
  blob?: { hash: string; size: number };
  error?: { code: string; message: string };
}

class UploadError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const interrupted = () => new UploadError("the upload was interrupted; nothing was stored, upload again", "network");

/** whyRefused finds out why the upload stream's handshake failed, which a
 * browser does not tell a page, by asking the same URL over plain HTTP:
 * the server answers as it did (signed out, too many uploads at once) or,
 * when it would have taken the stream, with 426 Upgrade Required. Then the
 * WebSocket was lost on the way, nearly always by a reverse proxy. */
async function whyRefused(url: string): Promise<UploadError> {
  const plain = new URL(url);
  plain.protocol = plain.protocol === "wss:" ? "https:" : "http:";
  let resp: Response;
  try {
    resp = await fetch(plain, { credentials: "same-origin" });
  } catch {
    return new UploadError("the server cannot be reached; check your connection and upload again", "network");
  }
  if (resp.status === 426) {
    return new UploadError(
      "the upload connection did not reach the server, which would take it: something between this browser and the server, most likely a reverse proxy, does not pass WebSocket connections on. Its operator must let GET /api/v1/blobs/stream upgrade to a WebSocket (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"). Nothing was stored.",
      "network",
    );
  }
  const err = await errorFrom(resp);
  return new UploadError(err.message, err.code);
}

/** openStream opens the upload stream and returns it with the promise of
 * the blob the server stores. */
async function openStream(url: string, csrf: string, total: number): Promise<{ ws: WebSocket; stored: Promise<{ hash: string; size: number }> }> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => whyRefused(url).then(reject);
  });
  const stored = new Promise<{ hash: string; size: number }>((resolve, reject) => {
    ws.onmessage = (ev: MessageEvent<string>) => {
      const m = JSON.parse(ev.data) as ServerMessage;
      if (m.received !== undefined) progress(m.received, total);
      else if (m.blob) resolve(m.blob);
      else if (m.error) reject(new UploadError(m.error.message, m.error.code));
    };
    ws.onclose = () => reject(interrupted()); // no-op once settled
  });
  ws.send(JSON.stringify({ size: total, csrf }));
  return { ws, stored };
}

async function send({ ports, total, parts, upload }: UploadRequest): Promise<void> {
  const ready = new Map<number, Uint8Array<ArrayBuffer>>();
  let failed: Error | null = null;
  let wake = () => {};
  ports.forEach((port) => {
    port.onmessage = (ev: MessageEvent<SealMessage>) => {
      if ("error" in ev.data) failed = new UploadError(`encryption failed: ${ev.data.error}`);
      else ready.set(ev.data.part, ev.data.bytes);
      wake();
    };
  });
  const stream = upload ? await openStream(upload.url, upload.csrf, total) : null;
  // A refusal from the server ends the sending at once.
  stream?.stored.catch((err) => {
    failed ??= err;
    wake();
  });
  let sealed = 0;
  for (let p = 0; p < parts; p++) {
    while (!ready.has(p) && !failed) await new Promise<void>((r) => (wake = r));
    if (failed) throw failed;
    const bytes = ready.get(p)!;
    ready.delete(p);
    sealed += bytes.length;
    if (!stream) {
      postMessage({ type: "part", index: p, bytes: bytes.slice() } satisfies UploadMessage);
      progress(sealed, total);
    }
    for (let off = 0; stream && off < bytes.length; off += MESSAGE) {
      if (stream.ws.readyState !== WebSocket.OPEN) throw failed ?? interrupted();
      stream.ws.send(bytes.subarray(off, off + MESSAGE)); // copies
      while (stream.ws.bufferedAmount > BUFFERED && !failed) await new Promise((r) => setTimeout(r, 1));
    }
    // Sent: the buffer goes back for the worker's next part.
    ports[p % ports.length].postMessage(bytes.buffer, [bytes.buffer]);
  }
  if (sealed !== total) throw new UploadError(`encrypted ${sealed} bytes, expected ${total}`);
  const blob = stream ? await stream.stored : undefined;
  if (blob && blob.size !== total) throw new UploadError(`the server stored ${blob.size} bytes of the ${total} sent; upload again`);
  postMessage({ type: "done", blob } satisfies UploadMessage);
}

onmessage = (ev: MessageEvent<UploadRequest>) => {
  send(ev.data).catch((err) => postMessage({ type: "error", message: String(err?.message ?? err), code: err instanceof UploadError ? err.code : undefined } satisfies UploadMessage));
};
