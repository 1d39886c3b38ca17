// Checking a clean room's audit log in the browser, as the Go client does
// (cleanroom.VerifyAuditLog; the format is in docs/formats.md): each entry
// numbered in turn, chained to the one before, and hashing to its hash;
// and, as the chain alone cannot show a log rewritten hashes and all, that
// it still holds the last entry this browser verified (auditExtends).

import { hex, utf8 } from "./crypto/bytes";
import type { AuditEntry } from "./types";

/** goJSON is JSON.stringify with Go's encoding/json escapes, which the
 * hash is computed over. */
function goJSON(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** microTime renders an RFC 3339 UTC time with exactly six fraction digits. */
function microTime(at: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(at);
  if (!m) throw new Error(`audit entry time ${at} is not UTC RFC 3339`);
  return `${m[1]}.${(m[2] ?? "").padEnd(6, "0").slice(0, 6)}Z`;
}

/** auditHash returns the hash an entry of clean room dcrID must have. */
export async function auditHash(dcrID: string, e: AuditEntry): Promise<string> {
  const canonical = goJSON({ dcr: dcrID, seq: e.seq, at: microTime(e.at), actor: e.actor, action: e.action, node: e.node ?? "", detail: e.detail ?? "", prev: e.prev });
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(canonical))));
}

/** verifyAuditLog returns why a clean room's log does not verify, or null
 * when it does. */
export async function verifyAuditLog(dcrID: string, log: AuditEntry[]): Promise<string | null> {
  let prev = "";
  for (const [i, e] of log.entries()) {
    if (e.seq !== i + 1) return `entry ${i + 1} has number ${e.seq}, so entries are missing or reordered`;
    if (e.prev !== prev) return `entry ${e.seq} does not follow entry ${e.seq - 1}, so the log was changed`;
    if ((await auditHash(dcrID, e)) !== e.hash) return `entry ${e.seq} does not match its hash, so it was changed`;
    prev = e.hash;
  }
  return null;
}

/** auditExtends returns why log no longer holds, as entry seq, the entry
 * with this hash that was verified before (a log rewritten from some entry
 * on, hashes and all, or cut short), or null when it does. */
export function auditExtends(log: AuditEntry[], seq: number, hash: string): string | null {
  if (seq < 1 || seq > log.length) return `it has ${log.length} entries, but entry ${seq} was verified in this browser before, so entries were removed`;
  if (log[seq - 1].hash !== hash) return `entry ${seq} is not the one verified in this browser before, so the log was rewritten`;
  return null;
}

/** The last entry verified in this browser, per clean room: not a secret,
 * so it may live in localStorage. */
const pinKey = (dcrID: string) => `cleanroom.audit.${dcrID}`;

export function verifiedBefore(dcrID: string): { seq: number; hash: string } | null {
  try {
    return JSON.parse(localStorage.getItem(pinKey(dcrID)) ?? "null");
  } catch {
    return null;
  }
}

export function rememberVerified(dcrID: string, last: AuditEntry) {
  try {
    localStorage.setItem(pinKey(dcrID), JSON.stringify({ seq: last.seq, hash: last.hash }));
  } catch {
    /* storage refused (full, or a private window): the chain is still checked */
  }
}
