// Downloads sealed to this page (http/sealed.go): a job's result, logs or
// validation report come as the stored ciphertext, with the job's key
// sealed (HPKE) to a key pair made for the one download, so this page,
// and nothing between it and the enclave, decrypts them.

import { request } from "./api";
import { concat, fromBase64, toBase64, utf8 } from "./crypto/bytes";
import { open, resultKeyInfo } from "./crypto/hpke";
import { decryptBlob } from "./crypto/stream";

/** The associated data of a job's stored result and logs (docs/formats.md). */
export const resultAD = (job: string) => concat(utf8("cleanroom result v1"), Uint8Array.of(0), utf8(job));
export const logsAD = (job: string) => concat(utf8("cleanroom logs v1"), Uint8Array.of(0), utf8(job));

/** sealedDownload fetches path sealed to a new key pair and returns what
 * it decrypts to. jobID is the job, or null to take the one the server
 * names (a validation report). A tampered or cut download throws. */
export async function sealedDownload(path: string, jobID: string | null, ad: (job: string) => Uint8Array<ArrayBuffer>): Promise<Blob> {
  const pair = (await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const resp = await request("GET", path, undefined, { headers: { "X-Cleanroom-Recipient": toBase64(pub) } });
  const job = jobID ?? resp.headers.get("X-Cleanroom-Job") ?? "";
  const sealed = fromBase64(resp.headers.get("X-Cleanroom-Sealed-Key") ?? "");
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = await open(pair.privateKey, pub, resultKeyInfo(job), sealed);
  } catch {
    throw new Error("the server sent a key that does not open; download again");
  }
  const parts: Uint8Array<ArrayBuffer>[] = [];
  await decryptBlob(await resp.blob(), key, ad(job), (p) => void parts.push(p));
  return new Blob(parts);
}

/** saveAs hands blob to the browser as a download named name. */
export function saveAs(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
