import type { Reference } from '../oci/reference.js';
import { Authenticator } from './auth.js';
import { anonymous, type CredentialStore } from './credentials.js';
import { Repository } from './repository.js';
import { Transport, type TransportOptions } from './transport.js';

export interface RegistryClientOptions extends TransportOptions {
  /** Where credentials come from; anonymous when absent. */
  credentials?: CredentialStore;
}

/**
 * The entry point to registries: one transport (connections, TLS, proxies, retries) and one
 * authenticator (tokens cached per host and scope) shared by every repository it opens.
 */
export class RegistryClient {
  readonly transport: Transport;
  readonly auth: Authenticator;

  constructor(options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.auth = new Authenticator(options.credentials ?? anonymous, this.transport);
  }

  /** A repository of a registry (`localhost:5000/acme/app`); the reference's tag/digest is ignored. */
  repository(ref: Reference): Repository {
    return new Repository(this, ref.registry, ref.repository);
  }

  /** Check that a registry answers and that the credentials are accepted (what `login` does). */
  async ping(registry: string): Promise<void> {
    await Repository.ping(this, registry);
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
