import { Transform } from 'node:stream';
import type { ReadOnlyTarget, Target } from '../content/target.js';
import type { Descriptor } from '../oci/schemas.js';

/** Progress events for one object at most every this many bytes (and at its end). */
const PROGRESS_STEP = 256 * 1024;

/** The events a streamed blob reports (a part of copyGraph's CopyEvent). */
export type StreamEvent = { type: 'start'; descriptor: Descriptor } | { type: 'progress'; descriptor: Descriptor; bytes: number };

/**
 * Stream one blob. The source's GET and the destination's upload (POST, then the PUT that
 * reads the body) start together rather than one after the other: one round trip less per
 * blob. The source stream verifies the digest; its error, not the upload's, is reported.
 */
export async function streamBlob(desc: Descriptor, src: ReadOnlyTarget, dst: Target, emit: (event: StreamEvent) => void): Promise<void> {
  emit({ type: 'start', descriptor: desc });
  let done = 0;
  let reported = 0;
  let sourceError: unknown;
  const body = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (done - reported >= PROGRESS_STEP || done === desc.size) {
        reported = done;
        emit({ type: 'progress', descriptor: desc, bytes: done });
      }
      cb(null, chunk);
    },
  });
  const fetched = src.fetch(desc).then(
    (stream) => {
      if (body.destroyed) {
        stream.destroy();
        return;
      }
      stream.on('error', (err) => {
        sourceError ??= err;
        body.destroy(err);
      });
      // The upload gave up (or failed): stop reading the source too.
      body.on('close', () => {
        if (!stream.readableEnded) stream.destroy();
      });
      stream.pipe(body);
    },
    (err: unknown) => {
      sourceError = err;
      body.destroy(err as Error);
    },
  );
  try {
    await dst.push(desc, body);
  } catch (err) {
    body.destroy(); // and with it the source stream, now or when it arrives
    throw sourceError ?? err;
  }
  await fetched;
}
