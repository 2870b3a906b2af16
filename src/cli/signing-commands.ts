import { Option, type Command } from 'commander';
import { InputError } from '../oci/errors.js';
import { readStdin } from './auth-commands.js';
import { context } from './commands.js';

/** `sign` and `verify`: cosign- and Notation-compatible signatures on a bundle and its images. */
export function registerSigningCommands(program: Command): void {
  program
    .command('sign')
    .description('sign the bundle\'s index (what Porter signs), and with --images every image, with a cosign key')
    .argument('<ref>', 'registry/repo:tag, registry/repo@digest or oci:DIR[:TAG]')
    .requiredOption('--key <file>', 'cosign private key (cosign\'s encrypted key file, or PKCS#8 PEM); ECDSA P-256')
    .option('--images', 'sign every image of the bundle too', false)
    .addOption(new Option('--format <form>', 'cosign: the .sig tag beside the artifact; oci-1-1: an OCI 1.1 referrer').choices(['cosign', 'oci-1-1']).default('cosign'))
    .option('--password-stdin', 'read the key\'s password from stdin (else $COSIGN_PASSWORD)', false)
    .action(async (ref: string, opts, cmd: Command) => {
      const { loadPrivateKey } = await import('../signing/cosign-keys.js');
      const { bundleArtifacts, signArtifacts } = await import('../ops/signatures.js');
      const [{ withLocation }, { readInputFile }] = await Promise.all([import('../ops/locations.js'), import('../util/files.js')]);
      const pem = (await readInputFile(opts.key)).toString('utf8');
      const password = opts.passwordStdin ? (await readStdin()).replace(/[\r\n]+$/, '') : (process.env.COSIGN_PASSWORD ?? '');
      if (/ENCRYPTED/.test(pem) && !opts.passwordStdin && process.env.COSIGN_PASSWORD === undefined) {
        throw new InputError(`${opts.key}: the key is encrypted; set COSIGN_PASSWORD or pass --password-stdin`);
      }
      const key = loadPrivateKey(pem, password, opts.key);
      const { out, client } = await context(cmd);
      await withLocation(ref, client, { create: false }, async (location) => {
        if (location.kind === 'archive') throw new InputError(`${location.display}: an oci-archive is not changed in place; sign in a registry or oci:DIR, then archive it`);
        const signed = await signArtifacts(location, await bundleArtifacts(location, opts.images), key, opts.format);
        for (const s of signed) {
          const where = s.tag ? `${location.relocationName}:${s.tag}` : `referrer ${s.signature.digest}`;
          out.note(`${s.added ? 'signed' : 'already signed'} ${s.what} ${s.descriptor.digest} -> ${where}`);
        }
        out.result(signed.map((s) => s.signature.digest).join('\n'));
        out.data({
          reference: location.display,
          format: opts.format,
          signed: signed.map((s) => ({ what: s.what, digest: s.descriptor.digest, signature: s.signature.digest, tag: s.tag ?? null, added: s.added })),
        });
      });
    });

  program
    .command('verify')
    .description('check the signatures of the bundle\'s index (and with --images every image): cosign with --key, Notation with --certificate')
    .argument('<ref>', 'registry/repo:tag, registry/repo@digest, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .option('--key <file>', 'cosign public key (PEM)')
    .option('--certificate <file>', 'the Notation signer\'s certificate (PEM), or a CA it chains to')
    .option('--images', 'verify every image of the bundle too', false)
    .action(async (ref: string, opts, cmd: Command) => {
      if (Boolean(opts.key) === Boolean(opts.certificate)) throw new InputError('verify: give exactly one of --key (cosign) or --certificate (Notation)');
      const { bundleArtifacts, failureReason, verifyArtifacts, VerificationFailedError } = await import('../ops/signatures.js');
      const [{ withLocation }, { readInputFile }] = await Promise.all([import('../ops/locations.js'), import('../util/files.js')]);
      const pem = (await readInputFile(opts.key ?? opts.certificate)).toString('utf8');
      const verifier = opts.key
        ? { key: (await import('../signing/cosign-keys.js')).loadPublicKey(pem, opts.key) }
        : { certificate: (await import('../signing/notation.js')).loadCertificate(pem) };
      const kind = opts.key ? 'cosign' : 'Notation';
      const { out, client } = await context(cmd);
      await withLocation(ref, client, { create: false }, async (location) => {
        const results = await verifyArtifacts(location.target, await bundleArtifacts(location, opts.images), verifier);
        for (const r of results) {
          const good = r.checks.find((c) => c.ok);
          if (good) out.result(`verified ${r.what} ${r.descriptor.digest}: ${good.format} signature by ${good.signer ?? 'the given key'}${good.dockerReference ? ` (docker-reference ${good.dockerReference})` : ''}`);
          else out.warn(`${r.what} ${r.descriptor.digest}: ${failureReason(r, kind)}`);
        }
        out.data({
          reference: location.display,
          verified: results.every((r) => r.ok),
          artifacts: results.map((r) => ({ what: r.what, digest: r.descriptor.digest, ok: r.ok, checks: r.checks })),
        });
        const failed = results.filter((r) => !r.ok);
        if (failed.length > 0) throw new VerificationFailedError(`${failed.length} of ${results.length} artifact(s) have no valid ${kind} signature: ${failed.map((f) => f.what).join(', ')}`);
      });
    });
}
