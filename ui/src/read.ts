// Reading a part of the user's file into a buffer the caller reuses.

/** A read of the file that brings nothing for this long is started again
 * where it stopped: Chromium's file reads can stall for good (seen in a
 * few of hundreds of uploads, and often when parts of mixed sizes were
 * read by two workers at once). */
const STALL_MS = 5000;
const READ_TRIES = 4;

/** readInto reads blob whole into buf (at least blob.size bytes) and
 * returns the buffer holding it (buf itself is detached on the way: a
 * byte stream reads into it without a copy). */
export async function readInto(blob: Blob, buf: ArrayBuffer, stallMs = STALL_MS): Promise<ArrayBuffer> {
  const capacity = buf.byteLength;
  let off = 0;
  for (let tries = 1; off < blob.size; tries++) {
    const reader = blob.slice(off).stream().getReader({ mode: "byob" });
    let stalled = false;
    while (off < blob.size) {
      const read = reader.read(new Uint8Array(buf, off, blob.size - off));
      const timer = setTimeout(() => {
        stalled = true;
        reader.cancel(); // ends the pending read, which gives buf back
      }, stallMs);
      const { done, value } = await read;
      clearTimeout(timer);
      if (value) buf = value.buffer;
      if (stalled) {
        // A cancelled read may keep the buffer, and what was read with it.
        if (!value) [buf, off] = [new ArrayBuffer(capacity), 0];
        break;
      }
      if (done) throw new Error(`the file ended after ${off} of ${blob.size} bytes; was it changed while uploading?`);
      off += value!.byteLength;
    }
    if (!stalled) await reader.cancel(); // frees the browser's side of the read at once
    else if (tries === READ_TRIES) throw new Error(`reading the file stalled ${tries} times; try again`);
  }
  return buf;
}
