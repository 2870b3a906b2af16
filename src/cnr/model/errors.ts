import { CnabOciError } from '../../oci/errors.js';

/**
 * An answer of the CNR API that is not a success: the HTTP status, the slug clients switch on
 * (`package-not-found`, `invalid-release`, ...), a one-line message and details. The server
 * sends it as the API's envelope `{code, message, details}`; the client raises it from one.
 */
export class CnrError extends CnabOciError {
  // A 4xx is the caller's input (exit status 2 on the command line), anything else a failure.
  override readonly exitCode: number;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.exitCode = status >= 400 && status < 500 ? 2 : 1;
  }

  toJSON(): { code: string; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export const invalidUsage = (message: string, details?: Record<string, unknown>) => new CnrError(400, 'invalid-usage', message, details);
export const invalidParameters = (message: string, details?: Record<string, unknown>) => new CnrError(422, 'invalid-parameters', message, details);
export const invalidRelease = (message: string, details?: Record<string, unknown>) => new CnrError(422, 'invalid-release', message, details);
export const packageNotFound = (pkg: string) => new CnrError(404, 'package-not-found', `package ${pkg} not found`, { package: pkg });
export const releaseNotFound = (pkg: string, release: string, mediaType?: string) =>
  new CnrError(404, 'package-release-not-found', `release ${release}${mediaType ? ` (${mediaType})` : ''} of ${pkg} not found`, { package: pkg, release, ...(mediaType ? { media_type: mediaType } : {}) });
export const channelNotFound = (pkg: string, channel: string) => new CnrError(404, 'channel-not-found', `channel ${channel} of ${pkg} not found`, { package: pkg, channel });
export const packageExists = (pkg: string, release: string, mediaType: string) =>
  new CnrError(409, 'package-exists', `${pkg} ${release} (${mediaType}) already exists; push with force to overwrite`, { package: pkg, release, media_type: mediaType });
