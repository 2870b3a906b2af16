/**
 * A credential for one registry. `identityToken` is an OAuth2 refresh token (what `docker login`
 * stores for some registries); `registryToken` is a bearer token sent as is.
 */
export interface Credential {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Where credentials come from. `registry` is a normalised host (`docker.io`, `localhost:5000`). */
export interface CredentialStore {
  get(registry: string): Promise<Credential | undefined>;
}
