/** JSON from bytes or text, or undefined when it is not JSON: for readers that treat either the same. */
export function parseJsonOrUndefined(input: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
  } catch {
    return undefined;
  }
}
