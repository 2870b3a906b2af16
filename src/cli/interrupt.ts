/**
 * Ctrl-C for the CLI. The first SIGINT (or SIGTERM) aborts `interrupted`: the command's requests
 * in flight are aborted, nothing more is begun or tagged, temporary files are removed as the
 * operation unwinds, and the command exits 130 (143 for SIGTERM). A second signal, or an
 * operation still running after a grace period, removes the temporary files and exits at once.
 */
export const interrupted = new AbortController();

const GRACE_MS = 5000;
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
let received: keyof typeof EXIT_CODES | undefined;
let installed = false;

export function cancelOnSignals(): void {
  if (installed) return;
  installed = true;
  for (const signal of Object.keys(EXIT_CODES) as Array<keyof typeof EXIT_CODES>) {
    process.on(signal, () => {
      if (received) return exitNow(signal);
      received = signal;
      process.stderr.write(`\ncnab-oci: interrupted (${signal}); stopping\n`);
      interrupted.abort();
      setTimeout(() => exitNow(signal), GRACE_MS).unref();
    });
  }
}

/**
 * After a command has unwound from a signal (its temporary files removed, a layout it created
 * abandoned): exit now, rather than wait for what the abort could not close. A connection still
 * being made (a hung server's TLS handshake) holds the event loop until its 10 s timeout.
 */
export function exitIfInterrupted(): void {
  if (received) process.exit(EXIT_CODES[received]);
}

/** The exit status of an interrupted command, or undefined when no signal came. */
export function interruptedExitCode(): number | undefined {
  return received ? EXIT_CODES[received] : undefined;
}

function exitNow(signal: keyof typeof EXIT_CODES): void {
  void import('../content/tar.js').then(({ removeTemporarySync }) => {
    removeTemporarySync();
    process.exit(EXIT_CODES[signal]);
  });
}
