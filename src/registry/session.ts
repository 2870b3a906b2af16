import type { Authenticator } from './auth.js';
import type { Transport } from './transport.js';

/** The part of the transport the repository modules use: origins, sending, the retry policy (a budget per operation, the backoff), the debug log. */
export type SessionTransport = Pick<Transport, 'origin' | 'send' | 'log' | 'backoff' | 'budget'>;

/** The part of the authenticator they use: the header to send, and the answer to a 401. */
export type SessionAuth = Pick<Authenticator, 'authorization' | 'challenged' | 'refused'>;

/**
 * What a repository needs of the client that opened it: one transport and one authenticator
 * shared by every repository, and the upload chunking settings. RegistryClient is one; the
 * repository modules know only this, so they never import the client.
 */
export interface RegistrySession {
  readonly transport: SessionTransport;
  readonly auth: SessionAuth;
  /** Blobs larger than this (bytes) are uploaded in chunks that can resume. */
  readonly chunkThreshold: number;
  /** The most bytes one PATCH carries (Infinity: one PATCH per blob). */
  readonly chunkSize: number;
  /** Registries (hosts) found to have no Referrers API route at all: not asked again, whatever the repository. */
  readonly withoutReferrersApi: Set<string>;
}
