// What the fixture pushers take and return: the registry to push to, its credentials, and a pushed
// image's digests, media types, child manifests and blobs.
import type { Platform } from '../../core/model/manifest.ts';
import type { Digest } from '../../core/model/digest.ts';

/** Where to push: a TestRegistry (from startRegistry) or anything with the same shape. */
export interface RegistryTarget {
  /** `127.0.0.1:PORT` */
  host: string;
  credentials?: Credentials;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface BlobRef {
  digest: Digest;
  size: number;
  mediaType: string;
}

export interface ManifestRef {
  digest: Digest;
  size: number;
  mediaType: string;
  platform?: Platform;
  artifactType?: string;
}

export interface PushedImage {
  repository: string;
  tag: string;
  /** `HOST/REPOSITORY:TAG`, what skopeo's `docker://` takes. */
  reference: string;
  /** sha256 of the manifest (or index) bytes the registry serves. */
  digest: Digest;
  mediaType: string;
  /** Size of the top-level manifest (or index) in bytes. */
  size: number;
  /** Config digest of an image manifest (undefined for an index). */
  configDigest?: Digest;
  configMediaType?: string;
  artifactType?: string;
  /** Child manifests of an index ([] for an image manifest). */
  children: ManifestRef[];
  /** Unique config + layer blobs (over all children of an index), in manifest order. */
  blobs: BlobRef[];
  /** Sum of `blobs[].size`: the compressed bytes a copy of this image must move. */
  blobBytes: number;
  /** Every manifest a copy must store: the top-level one first, then the children. */
  manifests: ManifestRef[];
}

export interface SharedBaseTags {
  repository: string;
  images: PushedImage[];
  /** The base layer every tag has as its first layer. */
  base: BlobRef;
  /** Unique blobs over all tags (the base counted once). */
  blobs: BlobRef[];
  blobBytes: number;
}
