// Downloads sealed to this page (http/sealed.go): a job's result, logs or
// validation report come as the stored ciphertext, with the key of that
// one ciphertext sealed (HPKE) to a key pair made for the one download, so
// this page decrypts them and the server only sends ciphertext.

import { request } from "./api";
import { concat, fromBase64, toBase64, utf8 } from "./crypto/bytes";
import { open } from "./crypto/hpke";
import { decryptBlobWithFileKey } from "./crypto/stream";

/** The associated data of a job's stored result and logs (docs/formats.md). */
export const resultAD = (job: string) => concat(utf8("cleanroom result v1"), Uint8Array.of(0), utf8(job));
export const logsAD = (job: string) => concat(utf8("cleanroom logs v1"), Uint8Array.of(0), utf8(job));

/** downloadKeyInfo is the HPKE info binding a file key sealed to this
 * page to the ciphertext it opens, named by its associated data. */
export const downloadKeyInfo = (ad: Uint8Array) => concat(utf8("cleanroom download key v1"), Uint8Array.of(0), ad);

/** sealedDownload fetches path, a ciphertext whose associated data is
 * ad, sealed to a new key pair, and returns what it decrypts to. A
 * tampered or cut download, or one for another ciphertext, throws. */
export async function sealedDownload(path: string, ad: Uint8Array<ArrayBuffer>): Promise<Blob> {
  const pair = (await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const resp = await request("GET", path, undefined, { headers: { "X-Cleanroom-Recipient": toBase64(pub) } });
  let sealed: Uint8Array<ArrayBuffer>;
  try {
    sealed = fromBase64(resp.headers.get("X-Cleanroom-Sealed-Key") ?? "");
  } catch {
    sealed = new Uint8Array(0);
  }
  if (sealed.length === 0) throw new Error("the server sent no key sealed to this page (X-Cleanroom-Sealed-Key): it, or a proxy between, is older than this page or drops the header");
  let fileKey: Uint8Array<ArrayBuffer>;
  try {
    fileKey = await open(pair.privateKey, pub, downloadKeyInfo(ad), sealed);
  } catch {
    throw new Error("the key the server sent does not open this download; it was changed on the way, or is for something else");
  }
  // The plaintext goes into Blobs every 64 MiB, which the browser may keep
  // out of the page's memory, so that a large result is not held whole.
  const blobs: Blob[] = [];
  let parts: Uint8Array<ArrayBuffer>[] = [];
  let held = 0;
  await decryptBlobWithFileKey(await resp.blob(), fileKey, (p) => {
    parts.push(p);
    held += p.length;
    if (held >= 64 << 20) {
      blobs.push(new Blob(parts));
      [parts, held] = [[], 0];
    }
  });
  return new Blob([...blobs, new Blob(parts)]);
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
