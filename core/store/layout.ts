// The backup store layout, on top of any ObjectStore (keys relative to the bucket prefix or directory):
//
//   blobs/sha256/<hex>
//       Every piece of content, addressed by its sha256: layers, configs AND manifests (image
//       manifests, indexes and their child manifests), stored exactly once however many tags,
//       repositories or backups reference them.
//
//   catalog/<repository>/_tags/<tag>/<time>_<hex>.json                  (format oci)
//   catalog/<repository>/_tags/<tag>/<time>_<hex>.docker-archive.json   (format docker-archive)
//       One immutable record per observed value of a tag: <time> is the backup time in compact,
//       sortable UTC (20261126T102533123Z), <hex> the manifest digest, and the suffix the storage
//       format. The key alone therefore says what a tag holds (digest and format): one LIST of
//       `catalog/<repository>/` is the repository's whole catalog index, with no GET per tag (see
//       catalog-index.ts). A record is written only when the tag's latest value differs, and the
//       records under a tag are its full history (point-in-time restore picks the last one at or
//       before the requested time). Two overlapping runs may both write the same value at two
//       times; readers treat consecutive records of the same digest and format as one value.
//       `_tags` cannot collide with a repository path component: valid components never start with '_'.
//
//   catalog/<repository>/_tags/<tag>/<time>_deleted.json
//       A tombstone: a backup saw the repository at the source without this tag at <time>. From then
//       on the tag is not current (not listed, not restored) until a later record brings it back;
//       a point-in-time restore before <time> still restores it. parseCatalogKey ignores these keys
//       (they reference nothing); parseTombstoneKey reads them.
//
//   catalog/<repository>/_digests/<hex>.json
//       An image backed up by digest, without a tag.
//
//   catalog/<repository>/_settings/<time>_<hash>.json   (older records: <time>.json)
//       The repository's settings (tag mutability, scan on push, encryption, lifecycle and repository
//       policies, resource tags) as a backup found them, written only when they differ from the latest
//       record: the records are the settings' history, and a restore reads the last one at or before
//       its point in time. <hash> (16 hex) fingerprints the settings' canonical JSON, so unchanged
//       settings are recognised from the key listing without a GET. Not an image record:
//       parseCatalogKey ignores these keys.
//
//   catalog/<repository>/_settings/checked_<time>_<hash>.json
//       A full read of the settings at <time>, <hash> fingerprinting what DescribeRepositories
//       reported then: the workflow's listing reads policies and tags again only when the latest one
//       is older than its cadence or the fingerprint changed (core/engine/settings-cadence.ts).
//       Written once (like every catalog key), one per full read.
//
//   catalog/_deleted/<repository>.json
//       The repository was gone at the source (core/store/stored-repositories.ts).
//
//   <label>/<repository>/<tag>.tar[.gz|.zst]
//       docker-archive format only: the tag's latest value as one `docker load`-able tar (label: a
//       setting, default the region). Its catalog record (format 'docker-archive') carries the tar's
//       sha256 and the source's manifest digest. The tar is replaced when the tag changes, so only a
//       tag's latest record is restorable. Labels `blobs`, `catalog` and `runs` are refused.
//
//   runs/<runId>/...
//       Run batches, per-image results and the run report (see schema/contract.ts runKeys).
//
// A record is JSON: { repository, tag?, digest, mediaType, manifestSize, imageBytes, platforms?,
// children?, backedUpAt, runId?, format?, archive? } (see CatalogRecord).
//
// Crash safety: blobs are written before the manifests that reference them, child manifests before
// their index, and a record only after its manifest blob. A manifest blob present in blobs/ therefore
// means the whole image is present, and an interrupted backup leaves only unreferenced blobs, which
// the next run reuses.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isDigest, isRepositoryName, isTag } from '../../schema/names.ts';
import { ArchiveCompression, ArchiveFormat } from '../../schema/contract.ts';
import { digestHex } from '../model/digest.ts';
import { RepositorySettings } from '../../schema/repository-settings.ts';

export const BLOBS_PREFIX = 'blobs/sha256/';
export const CATALOG_PREFIX = 'catalog/';

export const blobKey = (digest: string) => `${BLOBS_PREFIX}${digestHex(digest)}`;
export const tagPrefix = (repository: string, tag: string) => `${CATALOG_PREFIX}${repository}/_tags/${tag}/`;
export const tagRecordKey = (repository: string, tag: string, time: string, digest: string, format: ArchiveFormat = 'oci') =>
  `${tagPrefix(repository, tag)}${time}_${digestHex(digest)}${format === 'oci' ? '' : `.${format}`}.json`;
export const tombstoneKey = (repository: string, tag: string, time: string) => `${tagPrefix(repository, tag)}${time}_deleted.json`;
export const digestRecordKey = (repository: string, digest: string) => `${CATALOG_PREFIX}${repository}/_digests/${digestHex(digest)}.json`;
export const settingsPrefix = (repository: string) => `${CATALOG_PREFIX}${repository}/_settings/`;
export const settingsRecordKey = (repository: string, time: string, hash?: string) =>
  `${settingsPrefix(repository)}${time}${hash ? `_${hash}` : ''}.json`;

export const settingsCheckedKey = (repository: string, time: string, describedHash: string) =>
  `${settingsPrefix(repository)}checked_${time}_${describedHash}.json`;
const SETTINGS_CHECKED_FILE = /^checked_(\d{8}T\d{9}Z)_([a-f0-9]{16})\.json$/;

/** A `catalog/<repository>/_settings/checked_<time>_<hash>.json` key's time and described-settings fingerprint; undefined for anything else. */
export function parseSettingsCheckedKey(key: string, repository: string): { time: string; describedHash: string } | undefined {
  const prefix = settingsPrefix(repository);
  const m = key.startsWith(prefix) ? SETTINGS_CHECKED_FILE.exec(key.slice(prefix.length)) : null;
  return m ? { time: m[1]!, describedHash: m[2]! } : undefined;
}

const SETTINGS_FILE = /^(\d{8}T\d{9}Z)(?:_([a-f0-9]{16}))?\.json$/;

/** Parses `catalog/<repository>/_settings/<time>[_<hash>].json` of the given repository; undefined for anything else. */
export function parseSettingsKey(
  key: string,
  repository: string,
): { key: string; repository: string; time: string; hash?: string } | undefined {
  const prefix = settingsPrefix(repository);
  if (!key.startsWith(prefix)) return undefined;
  const m = SETTINGS_FILE.exec(key.slice(prefix.length));
  return m ? { key, repository, time: m[1]!, ...(m[2] ? { hash: m[2] } : {}) } : undefined;
}

/** 16 hex of the sha256 of the settings' canonical JSON (object keys sorted). */
export function settingsHash(settings: unknown): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
          )
        : value;
  return createHash('sha256')
    .update(JSON.stringify(canonical(settings)))
    .digest('hex')
    .slice(0, 16);
}

/** `2026-11-26T10:25:33.123Z` -> `20261126T102533123Z`. */
export function compactTime(date: Date): string {
  return date.toISOString().replace(/[-:.]/g, '');
}

const COMPACT = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/;

/** `20261126T102533123Z` -> Date. */
export function parseCompactTime(time: string): Date {
  const m = COMPACT.exec(time);
  if (!m) throw new RangeError(`not a compact time: ${time}`);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

/** A catalog key, parsed without reading the object. */
export type CatalogKey =
  | { kind: 'tag'; key: string; repository: string; tag: string; time: string; digest: string; format: ArchiveFormat }
  | { kind: 'digest'; key: string; repository: string; digest: string };

const TAG_FILE = /^(\d{8}T\d{9}Z)_([a-f0-9]{64})(\.docker-archive)?\.json$/;
const TOMBSTONE_FILE = /^(\d{8}T\d{9}Z)_deleted\.json$/;
const DIGEST_FILE = /^([a-f0-9]{64})\.json$/;

/** Parses `catalog/...` keys; returns undefined for anything that is not a record of this layout. */
export function parseCatalogKey(key: string): CatalogKey | undefined {
  if (!key.startsWith(CATALOG_PREFIX)) return undefined;
  const segments = key.slice(CATALOG_PREFIX.length).split('/');
  const marker = segments.findIndex((s) => s.startsWith('_'));
  if (marker < 1) return undefined;
  const repository = segments.slice(0, marker).join('/');
  if (!isRepositoryName(repository)) return undefined;
  const rest = segments.slice(marker);
  if (rest[0] === '_tags' && rest.length === 3 && isTag(rest[1]!)) {
    const m = TAG_FILE.exec(rest[2]!);
    if (!m) return undefined;
    return { kind: 'tag', key, repository, tag: rest[1]!, time: m[1]!, digest: `sha256:${m[2]!}`, format: m[3] ? 'docker-archive' : 'oci' };
  }
  if (rest[0] === '_digests' && rest.length === 2) {
    const m = DIGEST_FILE.exec(rest[1]!);
    if (!m) return undefined;
    return { kind: 'digest', key, repository, digest: `sha256:${m[1]!}` };
  }
  return undefined;
}

/** A tombstone key (`catalog/<repository>/_tags/<tag>/<time>_deleted.json`), parsed; undefined for anything else. */
export function parseTombstoneKey(key: string): { key: string; repository: string; tag: string; time: string } | undefined {
  if (!key.startsWith(CATALOG_PREFIX)) return undefined;
  const segments = key.slice(CATALOG_PREFIX.length).split('/');
  if (segments.length < 4 || segments[segments.length - 3] !== '_tags') return undefined;
  const repository = segments.slice(0, -3).join('/');
  const tag = segments[segments.length - 2]!;
  const m = TOMBSTONE_FILE.exec(segments[segments.length - 1]!);
  if (!m || !isRepositoryName(repository) || !isTag(tag)) return undefined;
  return { key, repository, tag, time: m[1]! };
}

export const CatalogRecord = z.object({
  repository: z.string().refine(isRepositoryName),
  tag: z.string().refine(isTag).optional(),
  digest: z.string().refine(isDigest),
  mediaType: z.string(),
  manifestSize: z.number().int().nonnegative(),
  /** Sum of the sizes of every unique blob and manifest the image references, the root included. */
  imageBytes: z.number().int().nonnegative(),
  /** For an index: `os/arch[/variant]` of each child (attestation `unknown/unknown` entries omitted). */
  platforms: z.array(z.string()).optional(),
  backedUpAt: z.string(),
  runId: z.string().optional(),
  /** How the image is stored: absent or 'oci' = the content-addressed blobs above; 'docker-archive' = `archive`. */
  format: ArchiveFormat.optional(),
  /**
   * docker-archive: one `docker load`-able tar per tag at `<label>/<repository>/<tag>.tar[.gz|.zst]`.
   * `digest`/`mediaType`/`manifestSize` then describe the SOURCE manifest (an index for a multi-arch
   * source), which a restore cannot reproduce: only `configDigest` (the image ID) survives.
   */
  archive: z
    .object({
      key: z.string(),
      /** sha256 and size of the stored object (after compression). */
      sha256: z.string().refine(isDigest),
      size: z.number().int().nonnegative(),
      compression: ArchiveCompression,
      /** `os/arch[/variant]` of the archived image (the chosen child of a multi-arch source). */
      platform: z.string(),
      configDigest: z.string().refine(isDigest),
    })
    .optional(),
});
export type CatalogRecord = z.infer<typeof CatalogRecord>;

/** The record's storage format (records written before formats existed are oci). */
export const recordFormat = (record: Pick<CatalogRecord, 'format'>): ArchiveFormat => record.format ?? 'oci';

/** The record (or record key) is a docker-archive value: its image is a tar under `archive`, not blobs. */
export const isArchiveRecord = (record: Pick<CatalogRecord, 'format'>): boolean => recordFormat(record) === 'docker-archive';

/** `catalog/<repository>/_settings/<time>.json`: a repository's settings as one backup found them. */
export const RepositorySettingsRecord = z.object({
  repository: z.string().refine(isRepositoryName),
  settings: RepositorySettings,
  recordedAt: z.string(),
  runId: z.string().optional(),
});
export type RepositorySettingsRecord = z.infer<typeof RepositorySettingsRecord>;
