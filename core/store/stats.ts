// Storage report for a backup store: how much image data the catalog describes (logical bytes) and
// how much the store holds for it (stored bytes), per repository and in total.
//
//   logicalBytes        sum of imageBytes over every catalog record (each tag value in the history
//                       and each untagged image): what one archive per backed-up image would take.
//   currentLogicalBytes the same over the current images only (each tag's latest value + untagged).
//   storedBytes         per repository: the unique blobs and manifests its records reference (plus its
//                       docker-archive tars); in total: every object under blobs/ plus the archives.
//   dedupRatio          logicalBytes / storedBytes (null for an empty store).
import { storeObjects } from './store-objects.ts';
import type { BackupStore } from './backup-store.ts';
import { BLOBS_PREFIX, CATALOG_PREFIX, isArchiveRecord, type CatalogRecord } from './layout.ts';
import { ReferenceWalker } from './references.ts';
import { mapLimited } from '../limiter.ts';
import { storageCost, type StorageClassCost } from './cost.ts';

interface RepositoryStats {
  repository: string;
  /** Tags with at least one record. */
  tags: number;
  /** Untagged images (records under _digests/). */
  untagged: number;
  /** Every record: all values of all tags, plus untagged images. */
  records: number;
  logicalBytes: number;
  currentLogicalBytes: number;
  /** Unique bytes this repository's records reference (content shared with other repositories counted here too). */
  storedBytes: number;
  oldestBackup?: string;
  newestBackup?: string;
}

export interface StoreStats {
  store: string;
  repositories: RepositoryStats[];
  /** The fields of a repository's stats for the whole store (see the file header), and what only the store has. */
  totals: Omit<RepositoryStats, 'repository'> & {
    repositories: number;
    blobs: number;
    blobBytes: number;
    /** docker-archive tars the records name (each counted once). */
    archiveBytes: number;
    catalogBytes: number;
    /** Blob bytes some record references; the rest is what `prune` can collect. */
    referencedBytes: number;
    unreferencedBytes: number;
    dedupRatio: number | null;
    /** Records whose manifest tree could not be read (run verify); their stored bytes are undercounted. */
    unreadableImages: number;
    /** Blob and catalog bytes per storage class with a monthly estimate (cost.ts; archives counted as Standard). */
    storageClasses: StorageClassCost[];
    monthlyStorageUsd: number;
  };
}

export async function storeStats(store: BackupStore, options: { concurrency?: number } = {}): Promise<StoreStats> {
  const concurrency = options.concurrency ?? 16;
  const walker = new ReferenceWalker(storeObjects(store), concurrency);
  const referenced = new Set<string>();
  const archives = new Map<string, number>();
  let unreadableImages = 0;
  const minMax = (times: string[]) => {
    const sorted = times.map((t) => new Date(t).toISOString()).sort();
    return sorted.length ? { oldestBackup: sorted[0]!, newestBackup: sorted.at(-1)! } : {};
  };

  const repositories: RepositoryStats[] = [];
  for (const repository of await store.listRepositories()) {
    const history = await store.history(repository);
    const records = [...history.tags.flatMap((t) => t.records), ...history.untagged];
    const current = [...history.tags.map((t) => t.records.at(-1)!), ...history.untagged];
    const refs = new Map<string, number>();
    const repoArchives = new Map<string, number>();
    const trees = await mapLimited(records, concurrency, async (r) =>
      isArchiveRecord(r) ? undefined : walker.tree({ digest: r.digest, mediaType: r.mediaType }),
    );
    records.forEach((r, i) => {
      if (isArchiveRecord(r)) {
        if (r.archive) repoArchives.set(r.archive.key, r.archive.size);
        return;
      }
      const tree = trees[i]!;
      if (tree.problems.length > 0) unreadableImages++;
      for (const [digest, size] of tree.refs) refs.set(digest, size);
    });
    for (const digest of refs.keys()) referenced.add(digest);
    for (const [key, size] of repoArchives) archives.set(key, size);
    const sum = (list: CatalogRecord[]) => list.reduce((total, r) => total + r.imageBytes, 0);
    repositories.push({
      repository,
      tags: history.tags.length,
      untagged: history.untagged.length,
      records: records.length,
      logicalBytes: sum(records),
      currentLogicalBytes: sum(current),
      storedBytes: [...refs.values(), ...repoArchives.values()].reduce((a, b) => a + b, 0),
      ...minMax(records.map((r) => r.backedUpAt)),
    });
  }

  let blobs = 0;
  let blobBytes = 0;
  let referencedBytes = 0;
  const byClass = new Map<string, number>();
  const addClass = (storageClass: string | undefined, bytes: number) =>
    byClass.set(storageClass ?? 'STANDARD', (byClass.get(storageClass ?? 'STANDARD') ?? 0) + bytes);
  for await (const object of storeObjects(store).list(BLOBS_PREFIX)) {
    blobs++;
    blobBytes += object.size;
    addClass(object.storageClass, object.size);
    if (referenced.has(`sha256:${object.key.slice(BLOBS_PREFIX.length)}`)) referencedBytes += object.size;
  }
  let catalogBytes = 0;
  for await (const object of storeObjects(store).list(CATALOG_PREFIX)) {
    catalogBytes += object.size;
    addClass(object.storageClass, object.size);
  }
  const archiveBytes = [...archives.values()].reduce((a, b) => a + b, 0);
  if (archiveBytes > 0) addClass(undefined, archiveBytes);
  const cost = storageCost(byClass);
  const storedBytes = blobBytes + archiveBytes;
  const total = (field: 'tags' | 'untagged' | 'records' | 'logicalBytes' | 'currentLogicalBytes') =>
    repositories.reduce((sum, r) => sum + r[field], 0);
  const logicalBytes = total('logicalBytes');
  return {
    store: store.description,
    repositories,
    totals: {
      repositories: repositories.length,
      tags: total('tags'),
      untagged: total('untagged'),
      records: total('records'),
      logicalBytes,
      currentLogicalBytes: total('currentLogicalBytes'),
      storedBytes,
      blobs,
      blobBytes,
      archiveBytes,
      catalogBytes,
      referencedBytes,
      unreferencedBytes: blobBytes - referencedBytes,
      dedupRatio: storedBytes > 0 ? logicalBytes / storedBytes : null,
      ...minMax(repositories.flatMap((r) => [r.oldestBackup, r.newestBackup].filter((t): t is string => t !== undefined))),
      unreadableImages,
      storageClasses: cost.classes,
      monthlyStorageUsd: cost.monthlyUsd,
    },
  };
}
