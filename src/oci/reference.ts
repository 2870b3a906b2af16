import { InvalidReferenceError } from './errors.js';
import { isDigest } from './digest.js';

/**
 * Image references with Docker's grammar and normalisation
 * (`nginx` -> `docker.io/library/nginx:latest` when a tag is required).
 */
export const DOCKER_HUB = 'docker.io';
/** The host Docker actually talks to for `docker.io`. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*)|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const NAME_MAX = 255;

export class Reference {
  constructor(
    /** Registry host[:port], normalised (`docker.io` for Docker Hub). */
    readonly registry: string,
    /** Repository path, e.g. `library/nginx`. */
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}

  /** `registry/repository` */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** The digest if there is one, else the tag (`latest` when neither was given). */
  get reference(): string {
    return this.digest ?? this.tag ?? 'latest';
  }

  withDigest(digest: string): Reference {
    return new Reference(this.registry, this.repository, undefined, digest);
  }

  withTag(tag: string): Reference {
    return new Reference(this.registry, this.repository, tag, undefined);
  }

  /** The fully qualified form: `docker.io/library/nginx:1.0@sha256:...`. */
  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }

  /** Docker's short form: `nginx:1.0` for `docker.io/library/nginx:1.0`. */
  familiar(): string {
    let name = this.name;
    if (this.registry === DOCKER_HUB) {
      name = this.repository.startsWith('library/') && this.repository.split('/').length === 2
        ? this.repository.slice('library/'.length)
        : this.repository;
    }
    return `${name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

/** Parse and normalise a reference the way Docker's `ParseNormalizedNamed` does. */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw new InvalidReferenceError(input, 'empty reference');
  if (/\s/.test(input)) throw new InvalidReferenceError(input, 'contains whitespace');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new InvalidReferenceError(input, `invalid digest ${JSON.stringify(digest)}`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(input, `invalid tag ${JSON.stringify(tag)}`);
  }
  let registry: string;
  let repository: string;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(registry)) throw new InvalidReferenceError(input, `invalid registry host ${JSON.stringify(registry)}`);
  } else {
    registry = DOCKER_HUB;
    repository = rest;
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (repository !== repository.toLowerCase()) {
    throw new InvalidReferenceError(input, 'repository name must be lowercase');
  }
  if (!PATH_RE.test(repository)) throw new InvalidReferenceError(input, `invalid repository name ${JSON.stringify(repository)}`);
  if (`${registry}/${repository}`.length > NAME_MAX) {
    throw new InvalidReferenceError(input, `repository name longer than ${NAME_MAX} characters`);
  }
  return new Reference(registry, repository, tag, digest);
}

/** The host to open connections to for a normalised registry name. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** True for hosts Docker treats as local: plain HTTP may be tried after HTTPS fails. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host.endsWith('.localhost');
}
