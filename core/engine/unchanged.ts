// Before a backup copies anything: which planned images the store already holds (left out of the
// run), and which stored tags the source no longer has (recorded as deleted). The one path for the
// CLI and the workflow's listing Lambda.
//
// Request budget per repository: one LIST of its catalog (catalog-index.ts), whatever its number
// of tags; per unchanged image: nothing at the store, nothing at ECR (DescribeImages gave the
// digest), one manifest HEAD by tag at any other registry. Only an unchanged image kept in the
// docker-archive format costs one GET (its record says which tar and platform it holds).
import type { ArchiveFormat, DeletedTag, WorkItem } from '../../schema/contract.ts';
import { listingIsCurrent, type ArchiveSettings } from '../archive/settings.ts';
import { mapLimited } from '../limiter.ts';
import type { ImageEndpoint, ImageListing, ImageRepository } from '../model/endpoint.ts';
import { recordListing } from '../store/backup-repository.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { currentRecord, type CatalogIndex } from '../store/catalog-index.ts';

export interface UnchangedSplit {
  /** Items to copy (new or changed), in the planned order. */
  work: WorkItem[];
  /** Items the store already holds in the wanted format, with their digest. */
  unchanged: WorkItem[];
  /** Stored tags the source no longer has, recorded now (empty when `recordDeletions` is false). */
  deleted: DeletedTag[];
}

export interface SplitOptions {
  format: ArchiveFormat;
  settings?: ArchiveSettings;
  /** Write tombstones for tags gone from the source (not in a dry run). */
  recordDeletions: boolean;
  concurrency?: number;
  /** Reads a repository's catalog index (default: one LIST); the sharded listing shares its reads with the settings step. */
  readIndex?: (repository: string) => Promise<CatalogIndex>;
}

/**
 * Splits planned backup items into work and unchanged ones, and records deleted tags. `listings`
 * holds each listed repository's FULL source listing (before tag filters), so a tag a filter left
 * out is never mistaken for a deleted one; repositories with no planned item are still checked.
 */
export async function splitUnchanged(
  source: ImageEndpoint,
  store: BackupStore,
  items: readonly WorkItem[],
  listings: ReadonlyMap<string, ImageListing[]>,
  options: SplitOptions,
): Promise<UnchangedSplit> {
  const byRepository = new Map<string, WorkItem[]>();
  for (const item of items) byRepository.set(item.repository, [...(byRepository.get(item.repository) ?? []), item]);
  const repositories = [...new Set([...listings.keys(), ...byRepository.keys()])].sort();
  const concurrency = options.concurrency ?? 16;
  const unchanged = new Map<WorkItem, string>();
  // A tag re-copied while the store holds another value of it: the value it may be moving from.
  const previous = new Map<WorkItem, string>();
  const deleted: DeletedTag[] = [];
  await mapLimited(repositories, concurrency, async (repository) => {
    const index = await (options.readIndex ?? ((name: string) => store.catalogIndex(name)))(repository);
    const listing = listings.get(repository) ?? [];
    const digests = new Map(listing.filter((l) => l.tag !== undefined && l.digest !== undefined).map((l) => [l.tag!, l.digest!]));
    const storedDigests = new Set(index.digests.map((k) => k.digest));
    const sourceRepository = source.repository(repository);
    await mapLimited(byRepository.get(repository) ?? [], concurrency, async (item) => {
      if (item.tag === undefined) {
        if (item.digest !== undefined && options.format === 'oci' && storedDigests.has(item.digest)) unchanged.set(item, item.digest);
        return;
      }
      const entries = index.tags.get(item.tag);
      const record = entries && currentRecord(entries);
      if (!record) return;
      const digest = item.digest ?? digests.get(item.tag) ?? (await sourceRepository.resolveTagDigest?.(item.tag));
      if (digest === undefined || record.digest !== digest) {
        previous.set(item, record.digest);
        return;
      }
      if (record.format !== options.format) return;
      if (options.format === 'docker-archive') {
        const stored = recordListing(await store.readRecord(record.key));
        if (
          !listingIsCurrent(stored, {
            repository,
            tag: item.tag,
            digest,
            format: options.format,
            ...(options.settings ? { settings: options.settings } : {}),
          })
        )
          return;
      }
      unchanged.set(item, digest);
    });
    if (!options.recordDeletions || !listings.has(repository)) return;
    const present = new Set(listing.map((l) => l.tag).filter((t) => t !== undefined));
    const gone = [...index.tags].filter(([tag, entries]) => !present.has(tag) && currentRecord(entries) !== undefined).map(([tag]) => tag);
    if (gone.length) deleted.push(...(await store.repository(repository).recordDeletions(gone.sort())));
  });
  return {
    work: items
      .filter((item) => !unchanged.has(item))
      .map((item) => (previous.has(item) ? { ...item, previousDigest: previous.get(item)! } : item)),
    unchanged: items.filter((item) => unchanged.has(item)).map((item) => ({ ...item, digest: unchanged.get(item)! })),
    deleted: deleted.sort((a, b) => (a.repository === b.repository ? (a.tag < b.tag ? -1 : 1) : a.repository < b.repository ? -1 : 1)),
  };
}

/** The endpoint, remembering each repository's full listing as planImages reads it. */
export function recordingListings(source: ImageEndpoint, seen: Map<string, ImageListing[]>): ImageEndpoint {
  return {
    description: source.description,
    listRepositories: () => source.listRepositories(),
    ...(source.repositorySettings ? { repositorySettings: (name: string) => source.repositorySettings!(name) } : {}),
    repository(name) {
      const repository = source.repository(name);
      return Object.assign(Object.create(repository) as ImageRepository, {
        listImages: async () => {
          const listings = await repository.listImages();
          seen.set(name, listings);
          return listings;
        },
      });
    },
  };
}
