import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../../src/cli/redact.js';

describe('redactSecrets', () => {
  it.each([
    ['https://bob:s3cret@proxy.example:3128/x', 's3cret'],
    ['GET https://reg/v2/ with Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl', 'eyJhbGciOi'],
    ['Basic Ym9iOnMzY3JldA==', 'Ym9iOnMzY3JldA=='],
    ['https://auth/token?service=x&refresh_token=r3fresh&scope=a', 'r3fresh'],
    ['https://bucket.s3/blob?X-Amz-Credential=AKIA123&X-Amz-Signature=abcdef0123', 'abcdef0123'],
    ['{"ServerURL":"reg","Username":"bob","Secret":"hunter2"}', 'hunter2'],
    ['{"auths":{"reg":{"auth":"Ym9iOmh1bnRlcjI=","identitytoken":"id-tok"}}}', 'id-tok'],
    ['{"token":"t0k\\"en","expires_in":300}', 't0k'],
  ])('hides the secret in %s', (text, secret) => {
    const out = redactSecrets(text);
    expect(out).not.toContain(secret);
    expect(out).toContain('***');
  });

  it('leaves ordinary messages alone', () => {
    const msg = '127.0.0.1:5000/acme/app@sha256:0123abcd: not found (MANIFEST_UNKNOWN: manifest unknown); scope repository:acme/app:pull';
    expect(redactSecrets(msg)).toBe(msg);
    expect(redactSecrets('debug: GET https://reg.example/v2/acme/app/blobs/sha256:ab -> 200')).toBe('debug: GET https://reg.example/v2/acme/app/blobs/sha256:ab -> 200');
  });

  it("hides Quay's CNR token (lowercase basic) but not the word basic in prose", () => {
    const token = `basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    const out = redactSecrets(`sending authorization: ${token}`);
    expect(out).not.toContain(Buffer.from('alice:s3cret').toString('base64'));
    expect(out).toContain('basic ***');
    expect(redactSecrets('a basic check failed')).toBe('a basic check failed');
  });
});
