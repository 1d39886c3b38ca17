// Key release: HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256 and AES-128-GCM, single shot (docs/formats.md, section 3).
// Web Crypto's HKDF does extract and expand in one step, so the labeled
// steps are built on HMAC-SHA256 as the RFC defines them.

import { concat, utf8 } from "./bytes";

const KEM_SUITE = new Uint8Array([0x4b, 0x45, 0x4d, 0x00, 0x20]); // "KEM" || 0x0020
const HPKE_SUITE = new Uint8Array([0x48, 0x50, 0x4b, 0x45, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01]);
const VERSION = utf8("HPKE-v1");

async function hmac(key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  // HMAC pads short keys with zeros, so an empty salt is the 32 zero bytes.
  const k = await crypto.subtle.importKey("raw", key.length ? key : new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

async function expand(prk: Uint8Array<ArrayBuffer>, info: Uint8Array<ArrayBuffer>, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const out: Uint8Array[] = [];
  let block: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  for (let i = 1, n = 0; n < length; i++) {
    block = await hmac(prk, concat(block, info, new Uint8Array([i])));
    out.push(block);
    n += block.length;
  }
  return concat(...out).slice(0, length);
}

function labeledExtract(salt: Uint8Array<ArrayBuffer>, suite: Uint8Array, label: string, ikm: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return hmac(salt, concat(VERSION, suite, utf8(label), ikm));
}

function labeledExpand(prk: Uint8Array<ArrayBuffer>, suite: Uint8Array, label: string, info: Uint8Array, length: number): Promise<Uint8Array<ArrayBuffer>> {
  return expand(prk, concat(new Uint8Array([length >> 8, length & 0xff]), VERSION, suite, utf8(label), info), length);
}

async function x25519(priv: CryptoKey, pub: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const pk = await crypto.subtle.importKey("raw", pub, { name: "X25519" }, false, []);
  const dh = new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: pk }, priv, 256));
  if (dh.every((b) => b === 0)) throw new Error("HPKE: the public key is a low-order point");
  return dh;
}

async function sharedSecret(dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const prk = await labeledExtract(new Uint8Array(0), KEM_SUITE, "eae_prk", dh);
  return labeledExpand(prk, KEM_SUITE, "shared_secret", concat(enc, pkR), 32);
}

/** Context is an HPKE base-mode context's AEAD key and base nonce. */
export interface Context {
  key: CryptoKey;
  baseNonce: Uint8Array<ArrayBuffer>;
}

/** keySchedule derives the base-mode context of a shared secret. */
export async function keySchedule(shared: Uint8Array<ArrayBuffer>, info: Uint8Array): Promise<Context> {
  const empty = new Uint8Array(0);
  const ctx = concat(new Uint8Array([0]), await labeledExtract(empty, HPKE_SUITE, "psk_id_hash", empty), await labeledExtract(empty, HPKE_SUITE, "info_hash", info));
  const secret = await labeledExtract(shared, HPKE_SUITE, "secret", empty);
  const raw = await labeledExpand(secret, HPKE_SUITE, "key", ctx, 16);
  const baseNonce = await labeledExpand(secret, HPKE_SUITE, "base_nonce", ctx, 12);
  const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  return { key, baseNonce };
}

/** nonceFor returns the nonce of message seq of a context. */
export function nonceFor(ctx: Context, seq: number): Uint8Array<ArrayBuffer> {
  const n = ctx.baseNonce.slice();
  for (let i = 0; i < 4; i++) n[11 - i] ^= (seq >>> (8 * i)) & 0xff;
  return n;
}

/** seal encrypts plaintext to the X25519 public key pkR, bound to info:
 * enc (32 bytes) || ciphertext, with empty aad. */
export async function seal(pkR: Uint8Array<ArrayBuffer>, info: Uint8Array, plaintext: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  if (pkR.length !== 32) throw new Error("HPKE: the enclave public key must be 32 bytes");
  const eph = (await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"])) as CryptoKeyPair;
  const enc = new Uint8Array(await crypto.subtle.exportKey("raw", eph.publicKey));
  const ctx = await keySchedule(await sharedSecret(await x25519(eph.privateKey, pkR), enc, pkR), info);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: ctx.baseNonce, tagLength: 128 }, ctx.key, plaintext);
  return concat(enc, new Uint8Array(ct));
}

const PKCS8_X25519 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

/** importPrivateKey imports 32 raw X25519 private key bytes. */
export function importPrivateKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("pkcs8", concat(PKCS8_X25519, raw), { name: "X25519" }, false, ["deriveBits"]);
}

/** setupReceiver derives the context a recipient with private key skR
 * (public key pkR) shares with the sender of enc. */
export async function setupReceiver(skR: CryptoKey, pkR: Uint8Array, enc: Uint8Array<ArrayBuffer>, info: Uint8Array): Promise<Context> {
  return keySchedule(await sharedSecret(await x25519(skR, enc), enc, pkR), info);
}

/** open decrypts a sealed message (enc || ciphertext) with the recipient's
 * key pair; it throws on a wrong key, wrong info or tampering. */
export async function open(skR: CryptoKey, pkR: Uint8Array, info: Uint8Array, sealed: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const ctx = await setupReceiver(skR, pkR, sealed.slice(0, 32), info);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: ctx.baseNonce, tagLength: 128 }, ctx.key, sealed.slice(32)));
}

/** datasetKeyInfo is the HPKE info binding a dataset key to one clean
 * room, data node and ciphertext. */
export function datasetKeyInfo(dcrID: string, node: string, manifestHash: string): Uint8Array<ArrayBuffer> {
  const z = new Uint8Array([0]);
  return concat(utf8("cleanroom dataset key v1"), z, utf8(dcrID), z, utf8(node), z, utf8(manifestHash));
}

/** resultKeyInfo is the HPKE info binding a result key to one job. */
export function resultKeyInfo(jobID: string): Uint8Array<ArrayBuffer> {
  return concat(utf8("cleanroom result key v1"), new Uint8Array([0]), utf8(jobID));
}
