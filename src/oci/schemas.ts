import { z } from 'zod';
import { isDigest } from './digest.js';

/** zod schemas for the OCI image-spec objects we read. Liberal in what they accept (Docker types too). */

export const DigestSchema = z.string().refine(isDigest, { message: 'invalid digest (sha256 or sha512 expected)' });

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: DigestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  data: z.string().optional(),
  platform: PlatformSchema.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  // Go marshals a nil slice as null: cnab-to-oci's config manifest has "layers": null.
  layers: z.array(DescriptorSchema).nullable().optional(),
  subject: DescriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export const IndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(DescriptorSchema).nullable(),
  subject: DescriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Index = z.infer<typeof IndexSchema>;

/** `oci-layout` file of an OCI image layout. */
export const ImageLayoutSchema = z.object({ imageLayoutVersion: z.string() });
