// Dataset upload from the browser, in the format of the Go client: encrypt
// on this machine (in seal workers, seal.worker.ts) while sending the
// ciphertext as it is made (from the upload worker, upload.worker.ts, over
// one WebSocket); seal the dataset key to the enclave bound to this clean
// room, node and the ciphertext's hash; and publish. The server never sees
// the plaintext or the key.

import { ApiError, CSRF_HEADER, api, csrfHeaders } from "./api";
import { fromBase64, hex, randomBytes, toBase64 } from "./crypto/bytes";
import { datasetKeyInfo, seal } from "./crypto/hpke";
import { DATASET_AD, ciphertextSize, segmentCount } from "./crypto/stream";
import type { SealRequest } from "./seal.worker";
import type { Attestation, Dataset } from "./types";
import type { UploadMessage, UploadRequest } from "./upload.worker";

export interface Progress {
  phase: "uploading" | "publishing";
  done: number;
  total: number;
}

/** PER_PART is the segments in one part, the unit a seal worker reads and
 * seals at a time: large reads cost the browser less per byte. */
export const PER_PART = 32;

/** SEAL_WORKERS is how many workers read and encrypt at once. Two seal
 * over 2 GB/s together (crypto/gcm.ts), more than a network link carries;
 * on one core they take turns. */
const SEAL_WORKERS = 2;

/** runPipeline encrypts file with key in seal workers and hands the parts
 * in order to the upload worker, which sends them to upload or, without
 * it, back through onMessage. It resolves when the last part is handed on
 * (and, with upload, stored). */
function runPipeline(file: Blob, key: Uint8Array<ArrayBuffer>, perPart: number, upload: UploadRequest["upload"], onMessage: (m: UploadMessage) => void): Promise<{ hash: string; size: number } | undefined> {
  const salt = randomBytes(32);
  const prefix = randomBytes(7);
  const parts = Math.ceil(segmentCount(file.size) / perPart);
  const workers = Math.min(SEAL_WORKERS, parts);
  return new Promise((resolve, reject) => {
    const sender = new Worker(new URL("./upload.worker.ts", import.meta.url), { type: "module" });
    const sealers: Worker[] = [];
    const stop = () => [sender, ...sealers].forEach((w) => w.terminate());
    const fail = (err: Error) => {
      stop();
      reject(err);
    };
    const ports: MessagePort[] = [];
    for (let index = 0; index < workers; index++) {
      const w = new Worker(new URL("./seal.worker.ts", import.meta.url), { type: "module" });
      w.onerror = (ev) => fail(new Error(`encryption failed: ${ev.message}`));
      const ch = new MessageChannel();
      w.postMessage({ file, key, ad: DATASET_AD, salt, prefix, index, workers, perPart, port: ch.port1 } satisfies SealRequest, [ch.port1]);
      sealers.push(w);
      ports.push(ch.port2);
    }
    sender.onerror = (ev) => fail(new Error(`upload failed: ${ev.message}`));
    sender.onmessage = (ev: MessageEvent<UploadMessage>) => {
      const m = ev.data;
      if (m.type === "done") {
        stop();
        resolve(m.blob);
      } else if (m.type === "error") fail(m.code ? new ApiError(0, m.code, m.message) : new Error(m.message));
      else onMessage(m);
    };
    sender.postMessage({ ports, total: ciphertextSize(file.size), parts, upload } satisfies UploadRequest, ports);
  });
}

/** encryptFile encrypts a file with key as an upload does, returning the
 * whole ciphertext and its SHA-256 (for tests and small data: uploads send
 * the parts as they come, see encryptAndUpload). */
export async function encryptFile(file: Blob, key: Uint8Array<ArrayBuffer>, perPart = PER_PART): Promise<{ blob: Blob; hash: string }> {
  const parts: Blob[] = [];
  await runPipeline(file, key, perPart, undefined, (m) => {
    if (m.type === "part") parts[m.index] = new Blob([m.bytes]);
  });
  const blob = new Blob(parts, { type: "application/octet-stream" });
  return { blob, hash: hex(new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()))) };
}

/** encryptAndUpload encrypts file with key and uploads the ciphertext as
 * it is made, returning the hash the server stored it under. */
export async function encryptAndUpload(file: Blob, key: Uint8Array<ArrayBuffer>, onProgress: (done: number, total: number) => void): Promise<string> {
  const url = new URL("/api/v1/blobs/stream", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const csrf = csrfHeaders()[CSRF_HEADER] ?? "";
  const blob = await runPipeline(file, key, PER_PART, { url: url.href, csrf }, (m) => {
    if (m.type === "progress") onProgress(m.done, m.total);
  });
  return blob!.hash;
}

// The HPKE suite seal() implements, as RFC 9180 numbers it, and the one
// platform the page knows how to take an enclave's key from.
const SUITE = [0x0020, 0x0001, 0x0001];
const SOFTWARE_PLATFORM = "software";

/** checkAttestation refuses, before anything is encrypted or sent, an
 * enclave this page must not seal a dataset key to. */
export function checkAttestation(att: Attestation): void {
  const suite = [att.hpke_kem, att.hpke_kdf, att.hpke_aead];
  const ids = (s: number[]) => s.map((id) => "0x" + (id ?? 0).toString(16).padStart(4, "0")).join(", ");
  if (suite.some((id, i) => id !== SUITE[i])) {
    throw new Error(`The enclave seals with HPKE suite (${ids(suite)}), but this page only with (${ids(SUITE)}); nothing was uploaded. Reload the page once the server is updated.`);
  }
  if (fromBase64(att.public_key).length !== 32) {
    throw new Error("The enclave's public key is not an X25519 key; nothing was uploaded.");
  }
  if (att.platform !== SOFTWARE_PLATFORM) {
    throw new Error(`The enclave runs on platform "${att.platform}", which this page cannot verify; nothing was uploaded. Reload the page once the server is updated.`);
  }
}

/** uploadDataset encrypts, uploads and publishes file to a data node. */
export async function uploadDataset(dcrID: string, node: string, file: Blob, onProgress: (p: Progress) => void): Promise<Dataset> {
  const att = await api<Attestation>("GET", "/api/v1/enclave");
  checkAttestation(att);
  const key = randomBytes(32);
  const hash = await encryptAndUpload(file, key, (done, total) => onProgress({ phase: "uploading", done, total }));
  onProgress({ phase: "publishing", done: 0, total: 1 });
  const sealed = await seal(fromBase64(att.public_key), datasetKeyInfo(dcrID, node, hash), key);
  key.fill(0);
  const path = `/api/v1/dcrs/${encodeURIComponent(dcrID)}/nodes/${encodeURIComponent(node)}/dataset`;
  return api<Dataset>("PUT", path, { manifest_hash: hash, sealed_key: toBase64(sealed) });
}
