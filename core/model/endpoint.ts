// The one narrow interface the copy engine sees. A registry (remote), a backup store (S3 or a local
// directory) and later archive formats all implement it, so backup and restore are the same copy
// with the two ends swapped, and the engine never knows where bytes come from.
import type { Readable } from 'node:stream';
import type { Descriptor, Manifest } from './manifest.ts';
import type { RepositorySettings } from '../../schema/repository-settings.ts';
import type { ApplyOptions, RepositoryPreparation } from './repository-settings.ts';

/** A tagged (or, for untagged images, digest-only) image as a listing reports it. */
export interface ImageListing {
  tag?: string;
  digest?: string;
  /** Compressed bytes, when the source knows without fetching (ECR DescribeImages does). */
  sizeBytes?: number;
  /** When the image was pushed or backed up, when known. */
  time?: string;
  /** A store's listing: how the image is stored (absent: the content-addressed oci form). */
  format?: 'oci' | 'docker-archive';
  /** A store's docker-archive listing: the tar's key, the platform it holds, whether it was chosen from an index. */
  archive?: { key: string; platform: string; fromIndex: boolean };
}

/** A reference to resolve: a tag, or a digest with the media type when the caller knows it. */
export type ImageReference = { tag: string } | { digest: string; mediaType?: string };

export interface ImageRepository {
  readonly name: string;
  /** Where the repository lives, for error messages: `docker://host:port`, `ecr://account/region`, `s3://bucket/prefix`. */
  readonly location?: string;

  /** Tags (and, where the source can list them, untagged digests) in this repository. */
  listImages(): Promise<ImageListing[]>;
  /**
   * The digest a tag points at now, from one HEAD (no manifest GET), or undefined when the source
   * cannot tell (then the image is copied as if changed). For sources whose listing has no digests.
   */
  resolveTagDigest?(tag: string): Promise<string | undefined>;
  /** The manifest a tag or digest points at, its bytes verified against its digest. */
  getManifest(ref: ImageReference): Promise<Manifest>;
  /** Streams a blob's bytes. Callers verify; implementations may verify too. */
  openBlob(descriptor: Descriptor): Promise<Readable>;

  /**
   * True when the manifest with this digest is present and so is everything it references. For a
   * registry this is what the registry guarantees on manifest PUT; for a store it holds because a
   * manifest is written only after its blobs and children.
   */
  hasManifest(descriptor: Descriptor): Promise<boolean>;
  hasBlob(descriptor: Descriptor): Promise<boolean>;
  /**
   * Makes a blob present without transferring it, when the destination can (a registry's
   * cross-repository mount from another repository known to hold it). False when it could not.
   */
  mountBlob?(descriptor: Descriptor): Promise<boolean>;
  /**
   * True when blobs are stored once per endpoint whatever the repository (a backup store is
   * content-addressed): the engine then transfers a blob once per run for all repositories.
   */
  readonly blobsSharedAcrossRepositories?: boolean;
  /**
   * Stores a blob, verifying `body` against the descriptor's size and sha256 on the way (the store
   * while writing, the registry client before its final PUT). Commits nothing when the content does
   * not match or `body` errors (reset, abort). This is the digest check of every copy.
   */
  putBlob(descriptor: Descriptor, body: Readable): Promise<void>;
  /**
   * Stores a manifest by digest, bytes as given. `ref` is the reference the image was copied by:
   * a tag points that tag at it; a digest marks an untagged image worth listing on its own. Index
   * children are stored without a ref: they are part of their index, not images of their own.
   */
  putManifest(manifest: Manifest, ref?: ImageReference): Promise<void>;
}

/** Where an endpoint's registry API is, for a tool that talks to it itself (skopeo: `docker://<host>/...`). */
export interface RegistryAccess {
  host: string;
  /** False only for a plain-http registry (loopback, or opened as insecure). */
  tlsVerify: boolean;
  /** Absent: anonymous access. Asked for on every call, so expiring tokens (ECR) are fresh. */
  credentials?: { username: string; password: string };
}

// Optional methods are capabilities: a caller checks for the method, never for a class, so the store,
// a registry and ECR stay interchangeable wherever the capability is not needed.
export interface ImageEndpoint {
  /** A human-readable name for logs and errors: `docker://127.0.0.1:5000`, `s3://bucket/prefix`. */
  readonly description: string;
  listRepositories(): Promise<string[]>;
  repository(name: string): ImageRepository;
  /**
   * Creates the repository when the endpoint needs it to exist before a push (ECR), with `settings`
   * when given (policies left out with `skipPolicies`). A repository that already exists is left as
   * it is; the result then lists how it differs from `settings`. Throws when it cannot be created.
   */
  ensureRepository?(name: string, settings?: RepositorySettings, options?: ApplyOptions): Promise<RepositoryPreparation | undefined>;
  /**
   * The repository's settings (ECR: as configured; a store: as last recorded, at its asOf), or
   * undefined when there are none to tell.
   */
  repositorySettings?(name: string): Promise<RepositorySettings | undefined>;
  /** Keeps a repository's settings (a store); returns false when they equal the last ones kept. */
  recordRepositorySettings?(name: string, settings: RepositorySettings): Promise<boolean>;
  /** Deletes one image by digest (an index with its child manifests), when the endpoint can. */
  deleteImage?(repository: string, digest: string): Promise<void>;
  /** Deletes a repository and what is left in it (ECR); a repository that does not exist is no error. */
  deleteRepository?(name: string): Promise<void>;
  /** The registry API behind this endpoint, for external tools, when it has one. */
  registryAccess?(): Promise<RegistryAccess>;
}
