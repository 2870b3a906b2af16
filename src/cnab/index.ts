/** cnab/: the CNAB model and the pure bundle <-> OCI conversion. No I/O. */
export {
  BundleSchema,
  BUNDLE_FIELDS,
  DefinitionSchema,
  ImageSchema,
  InvocationImageSchema,
  parseBundle,
  validateBundle,
  type BaseImage,
  type Bundle,
  type Definition,
  type Image,
  type InvocationImage,
  type ParsedBundle,
} from './bundle.js';
export { canonicalize, canonicalBytes } from './canonical-json.js';
export { canonicalBundleBytes, droppedFields, projectBundle, type Projection } from './project.js';
export { RelocationMapSchema, parseRelocationMap, serializeRelocationMap, type RelocationMap } from './relocation.js';
export {
  Annotation,
  CNAB_ARTIFACT_TYPE,
  convertBundle,
  type Blob,
  type CnabManifestType,
  type ConfigMediaTypeChoice,
  type ConvertOptions,
  type ConvertedBundle,
  type IndexMediaTypeChoice,
} from './convert.js';
export { BUNDLE_CONFIG_MEDIA_TYPES, findConfigDescriptor, isBundleConfigMediaType, relocationMapFromIndex } from './from-index.js';
export { parseJsonText } from './json-text.js';
export { imageAt, imageSlots, locateImages, type BundleImage, type BundleImages, type ImageSlot, type LocatedImage } from './images.js';
