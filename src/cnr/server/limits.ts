/** Defaults of the server's limits, apart from the server so the CLI shows them without loading it. */
export const DEFAULT_MAX_BODY = 64 * 1024 * 1024;
