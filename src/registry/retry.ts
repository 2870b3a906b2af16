import { setTimeout as sleep } from 'node:timers/promises';
import { isTransientError } from '../oci/errors.js';
import type { SessionTransport } from './session.js';

/** Run a whole read again (a bounded number of times) when it failed in a way a new try may cure. */
export async function rereading<T>(transport: SessionTransport, what: string, read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= transport.attempts || !isTransientError(err)) throw err;
      const wait = transport.backoff(attempt);
      transport.log(`${what}: ${(err as Error).message}; reading it again (retry ${attempt}/${transport.attempts - 1}) in ${wait} ms`);
      await sleep(wait);
    }
  }
}
