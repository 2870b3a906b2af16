import { rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OciLayout } from '../content/layout.js';
import { parseLocation } from '../content/location.js';
import { extractArchive, makeTemporaryDir, removeTemporary, writeTarFile } from '../content/tar.js';
import { InputError } from '../oci/errors.js';
import { Reference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { openLocation, type OpenedLocation } from './locations.js';

/**
 * A location for copy: a registry, `oci:DIR[:TAG]`, or `oci-archive:FILE[:TAG]` (a tar of an OCI
 * layout, as skopeo writes it). An archive is read by extracting it safely into a temporary
 * layout, and written by filling a temporary layout that `finish` turns into the tar file
 * (atomically: the file appears whole or not at all). `dispose` removes the temporary files.
 */
export interface TransferLocation {
  location: OpenedLocation;
  finish(): Promise<void>;
  dispose(): Promise<void>;
  /** After a failure: remove a layout directory this run created, so nothing is left behind. */
  abandon(): Promise<void>;
}

/** Same stand-in repository as for layouts: the converter only needs "the" repository. */
const ARCHIVE_REFERENCE = new Reference('localhost', 'oci-layout');

export interface TransferLocationOptions {
  /** Create a layout directory (or write the archive at `finish`) instead of reading one. */
  create: boolean;
  /**
   * With false, an input that names no tag and no digest leaves `tag` undefined (copy then keeps
   * the source's tag) instead of defaulting to `latest`.
   */
  defaultTag?: boolean;
}

export async function openTransferLocation(input: string, client: RegistryClient, options: TransferLocationOptions): Promise<TransferLocation> {
  const loc = parseLocation(input);
  const named = loc.kind === 'registry' ? Boolean(loc.reference.tag ?? loc.reference.digest) : loc.tag !== undefined;
  const untag = (location: OpenedLocation): OpenedLocation => (options.defaultTag === false && !named ? { ...location, tag: undefined } : location);
  if (loc.kind !== 'archive') {
    const created = loc.kind === 'layout' && options.create && !(await stat(loc.dir).catch(() => undefined));
    const location = untag(await openLocation(input, client, { create: options.create }));
    const abandon = created && loc.kind === 'layout' ? () => rm(loc.dir, { recursive: true, force: true }) : async () => {};
    return { location, finish: async () => {}, dispose: async () => {}, abandon };
  }
  if (options.create && !(await stat(dirname(loc.file)).catch(() => undefined))?.isDirectory()) {
    throw new InputError(`${input}: directory ${dirname(loc.file)} does not exist`);
  }
  const work = await makeTemporaryDir('cnab-oci-oci-archive-');
  const dispose = () => removeTemporary(work);
  try {
    if (!options.create) await extractArchive(loc.file, work);
    const layout = await OciLayout.open(work, { create: options.create });
    const digest = loc.tag && /^sha(256|512):/.test(loc.tag) ? loc.tag : undefined;
    const location: OpenedLocation = {
      target: layout,
      display: `oci-archive:${loc.file}${loc.tag ? `${digest ? '@' : ':'}${loc.tag}` : ''}`,
      tag: digest ? undefined : (loc.tag ?? 'latest'),
      digest,
      relocationName: `oci-archive:${loc.file}`,
      reference: ARCHIVE_REFERENCE,
      kind: 'layout',
    };
    return {
      location: untag(location),
      finish: options.create ? () => writeTarFile(work, loc.file) : async () => {},
      dispose,
      abandon: async () => {}, // the archive file is only written by finish
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}
