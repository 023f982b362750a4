// The core model, after go-containerregistry: a descriptor names content by digest, size and media
// type; a manifest is raw bytes plus the descriptor they hash to. Manifests are kept as the exact
// bytes the registry served: re-serialising JSON would change the digest.
import { assertDigest, sha256Digest, type Digest } from './digest.ts';

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  OciImageConfig: 'application/vnd.oci.image.config.v1+json',
  DockerImageConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** What we send in Accept when fetching manifests: every type we can copy byte for byte. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(
  ', ',
);

/** Registries cap manifests at 4 MiB (distribution): no reader buffers more, and the store holds what a registry served. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
const IMAGE_TYPES = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
  /** Where a foreign (non-distributable) layer is fetched from instead of the registry. */
  urls?: string[];
}

/** A manifest or index exactly as served, with the descriptor of those bytes. */
export interface Manifest {
  descriptor: Descriptor;
  bytes: Buffer;
}

export class UnsupportedManifestError extends Error {
  override name = 'UnsupportedManifestError';
}

interface ParsedManifest {
  mediaType?: string;
  schemaVersion?: number;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  blobs?: Descriptor[];
}

function parse(bytes: Buffer): ParsedManifest {
  try {
    return JSON.parse(bytes.toString('utf8')) as ParsedManifest;
  } catch {
    throw new UnsupportedManifestError('manifest is not valid JSON');
  }
}

/**
 * Builds a Manifest from bytes, deciding the media type from (in order) the transport's
 * Content-Type, the manifest's own `mediaType` field, or its shape. Schema 1 is refused with a
 * clear error: its signed form cannot be copied byte for byte between registries.
 */
export function manifestFromBytes(bytes: Buffer, hint?: { mediaType?: string; digest?: string }): Manifest {
  const parsed = parse(bytes);
  const declared = hint?.mediaType && hint.mediaType !== 'application/json' ? hint.mediaType.split(';')[0]!.trim() : undefined;
  const mediaType = declared ?? parsed.mediaType ?? (parsed.manifests ? MediaType.OciIndex : MediaType.OciManifest);
  if (mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed || parsed.schemaVersion === 1) {
    throw new UnsupportedManifestError(
      'Docker schema 1 manifests are not supported (deprecated, and their signatures cannot be preserved); convert the image to schema 2 first',
    );
  }
  if (!INDEX_TYPES.has(mediaType) && !IMAGE_TYPES.has(mediaType)) {
    throw new UnsupportedManifestError(`unsupported manifest media type ${mediaType}`);
  }
  // A declared type (a Content-Type, a record, an index entry) never overrides what the bytes say:
  // an image called an index would hide its layers from verify and prune, and the reverse its children.
  if (declared && parsed.mediaType && parsed.mediaType !== declared) {
    throw new UnsupportedManifestError(`manifest declared as ${declared} says it is ${parsed.mediaType}`);
  }
  if (declared && (INDEX_TYPES.has(declared) ? !parsed.manifests : parsed.manifests !== undefined || !parsed.config)) {
    throw new UnsupportedManifestError(
      `manifest declared as ${declared} has the shape of ${parsed.manifests ? 'an index' : 'an image manifest'}`,
    );
  }
  if (hint?.digest) assertDigest(bytes, { digest: hint.digest });
  return { descriptor: { mediaType, digest: (hint?.digest as Digest) ?? sha256Digest(bytes), size: bytes.byteLength }, bytes };
}

export function isIndex(manifest: Manifest): boolean {
  return INDEX_TYPES.has(manifest.descriptor.mediaType);
}

/** Child manifests of an index (empty for an image manifest). */
export function childManifests(manifest: Manifest): Descriptor[] {
  return isIndex(manifest) ? (parse(manifest.bytes).manifests ?? []) : [];
}

/**
 * Foreign (non-distributable) layers: Windows base layers, which registries (ECR included) accept in a
 * manifest without holding the bytes. Like skopeo and crane by default, a copy keeps the descriptor
 * and skips the bytes: they are external to the store (not copied, verified, pruned or counted).
 */
const FOREIGN_LAYER_TYPES = new Set<string>([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/** A layer the registry need not hold: a foreign media type, or one with external `urls`. */
function isForeignLayer(layer: Descriptor): boolean {
  // A hostile manifest may list null or a string as a layer: not foreign (verify reports it malformed).
  if (typeof layer !== 'object' || layer === null) return false;
  return FOREIGN_LAYER_TYPES.has(layer.mediaType) || (Array.isArray(layer.urls) && layer.urls.length > 0);
}

/**
 * Blobs an image manifest references and a copy transfers: config first, then layers, foreign layers
 * left out (see foreignLayersOf); empty for an index.
 */
export function blobsOf(manifest: Manifest): Descriptor[] {
  if (isIndex(manifest)) return [];
  const parsed = parse(manifest.bytes);
  const layers = (parsed.layers ?? []).filter((l) => !isForeignLayer(l));
  return [...(parsed.config ? [parsed.config] : []), ...layers, ...(parsed.blobs ?? [])];
}

/** The foreign layers of an image manifest (empty for an index): kept by descriptor only. */
export function foreignLayersOf(manifest: Manifest): Descriptor[] {
  if (isIndex(manifest)) return [];
  return (parse(manifest.bytes).layers ?? []).filter(isForeignLayer);
}
