// Dataset upload from the browser, as the Go client does it: encrypt on
// this machine (in a worker), POST the ciphertext with its exact length,
// compare the hash the server stored it under with our own, seal the
// dataset key to the enclave bound to this clean room, node and
// ciphertext, and publish. The server never sees the plaintext or the key.

import { ApiError, api, csrfHeaders, errorFrom } from "./api";
import { fromBase64, randomBytes, toBase64 } from "./crypto/bytes";
import { datasetKeyInfo, seal } from "./crypto/hpke";
import { DATASET_AD } from "./crypto/stream";
import type { Attestation, Dataset } from "./types";
import type { EncryptMessage, EncryptRequest } from "./upload.worker";

export interface Progress {
  phase: "encrypting" | "uploading" | "publishing";
  done: number;
  total: number;
}

/** encryptFile encrypts a file with key in a worker, returning the
 * ciphertext and its manifest hash. */
export function encryptFile(file: Blob, key: Uint8Array<ArrayBuffer>, onProgress: (done: number, total: number) => void): Promise<{ blob: Blob; hash: string }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./upload.worker.ts", import.meta.url), { type: "module" });
    const hw = new Worker(new URL("./hash.worker.ts", import.meta.url), { type: "module" });
    const ch = new MessageChannel();
    hw.postMessage({ port: ch.port2 }, [ch.port2]);
    const stop = () => {
      w.terminate();
      hw.terminate();
    };
    w.onmessage = (ev: MessageEvent<EncryptMessage>) => {
      const m = ev.data;
      if (m.type === "progress") onProgress(m.done, m.total);
      else {
        stop();
        if (m.type === "done") resolve({ blob: m.blob, hash: m.hash });
        else reject(new Error(`encryption failed: ${m.message}`));
      }
    };
    w.onerror = hw.onerror = (ev) => {
      stop();
      reject(new Error(`encryption failed: ${ev.message}`));
    };
    w.postMessage({ file, key, ad: DATASET_AD, hashPort: ch.port1 } satisfies EncryptRequest, [ch.port1]);
  });
}

interface Blob_ {
  hash: string;
  size: number;
}

/** uploadBlob POSTs a ciphertext with XMLHttpRequest, which reports upload
 * progress (fetch does not) and sends the Blob's exact length. */
export function uploadBlob(blob: Blob, onProgress: (done: number, total: number) => void): Promise<Blob_> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/blobs");
    for (const [k, v] of Object.entries(csrfHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, blob.size);
    xhr.onload = async () => {
      const resp = new Response(xhr.response, { status: xhr.status, statusText: xhr.statusText });
      if (xhr.status >= 200 && xhr.status < 300) resolve(await resp.json());
      else reject(await errorFrom(resp));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted; nothing was stored, upload again"));
    xhr.send(blob);
  });
}

/** uploadDataset encrypts, uploads and publishes file to a data node. */
export async function uploadDataset(dcrID: string, node: string, file: Blob, onProgress: (p: Progress) => void): Promise<Dataset> {
  const att = await api<Attestation>("GET", "/api/v1/enclave");
  const key = randomBytes(32);
  const { blob, hash } = await encryptFile(file, key, (done, total) => onProgress({ phase: "encrypting", done, total }));
  const stored = await uploadBlob(blob, (done, total) => onProgress({ phase: "uploading", done, total }));
  if (stored.hash !== hash) throw new Error(`the server stored the upload as ${stored.hash} but the ciphertext sent hashes to ${hash}; upload again`);
  onProgress({ phase: "publishing", done: 0, total: 1 });
  const sealed = await seal(fromBase64(att.public_key), datasetKeyInfo(dcrID, node, hash), key);
  key.fill(0);
  const path = `/api/v1/dcrs/${encodeURIComponent(dcrID)}/nodes/${encodeURIComponent(node)}/dataset`;
  return api<Dataset>("PUT", path, { manifest_hash: hash, sealed_key: toBase64(sealed) });
}
