// Retention for a backup store: drop catalog history beyond a rule, then garbage-collect the blobs
// no remaining record needs (mark and sweep).
//
// Retention, per tag (catalog/<repo>/_tags/<tag>/, ordered by backup time). A tag's value is a run of
// consecutive records with the same digest and format: overlapping backups can record one value twice,
// and the copies after a run's first record change no `--as-of` answer, so they are always dropped and
// the rules count values:
//   keepLast N  keeps the N newest values.
//   keepDays D  keeps every record newer than D days, plus the newest record at or before that
//               cutoff: the value the tag had at the cutoff, so every `restore --as-of` within the
//               last D days gives the same images as before. The newest record of a tag is therefore
//               always kept, whatever its age (a tag deleted at the source keeps its last value).
//   Both given: a record is kept when either rule keeps it.
// Untagged images (catalog/<repo>/_digests/) are not values of one tag, so per repository they form
// one group ordered by their backedUpAt: keepLast N keeps the N newest of the repository, keepDays D
// those backed up within D days. Records this layout does not know (e.g. _settings/) are never touched.
//
// Mark: the manifest tree (index children, configs, layers) of every remaining record, plus every
// small blob written within the grace period that parses as a manifest (an image a running backup has
// stored but not yet recorded). If any remaining record's manifest is missing or corrupt, the sweep is
// skipped: what that image references cannot be known.
//
// Sweep: blobs/sha256/<hex> that are not marked AND were last modified before (prune start - grace),
// deleted manifests first, parents before children, then configs and layers (prune-order.ts), so an
// interrupted sweep never leaves a manifest without its content.
// A running backup writes blobs first, then manifests, then the record; everything it writes during
// the prune is therefore newer than the cutoff and survives, and only blobs of the first listing are
// ever candidates. A backup may also re-use an old blob that only dropped records referenced: right
// before the first blob delete (after marking, the long part of a large prune) the catalog and blobs/
// are listed again and new records and new fresh manifests are marked; after the sweep a final pass
// reports any record or manifest written meanwhile that names a deleted blob (a conflict: re-run that
// backup). Three listings per run, whatever the number of deletions (prune-scan.ts says what is read).
//
// Deletions go through ObjectStore.deleteMany. On S3 with Object Lock, locked objects are reported and
// left in place; a locked catalog record stays in the catalog, so its blobs stay marked.
import { STORE_OBJECTS, storeObjects } from './store-objects.ts';
import { MAX_MANIFEST_BYTES } from '../model/manifest.ts';
import type { BackupStore } from './backup-store.ts';
import { blobKey, parseCompactTime, type CatalogKey } from './layout.ts';
import { deleteKeys, NotFoundError, type AbandonedWrites, type DeleteManyResult, type ObjectStore } from './object-store.ts';
import { deletionOrder } from './prune-order.ts';
import { type BlobInfo, digestOfBlobKey, listBlobs, listRecords, Marker, type PruneProblem } from './prune-scan.ts';
import type { RetentionRule } from '../../schema/retention.ts';
import { applyRetention, assertRetentionRule, assignTagValues, type RetentionEntry } from './retention.ts';

export { applyRetention, type RetentionEntry } from './retention.ts';
import { ReferenceWalker } from './references.ts';
import { readRecordJson } from './record.ts';
import { mapLimited } from '../limiter.ts';
import { errorText } from '../redact.ts';

export const DEFAULT_GRACE_MS = 60 * 60 * 1000;

export interface PruneOptions extends RetentionRule {
  /** Decide and report; delete nothing. */
  dryRun?: boolean;
  /** Unreferenced blobs modified less than this long before the prune started are kept (default 1 h). */
  graceMs?: number;
  /**
   * Also remove what killed runs left (a directory's .tmp/ files, S3's incomplete multipart uploads)
   * untouched for this long before the prune started. Unset: left alone (the deployed bucket's
   * lifecycle aborts incomplete uploads itself). The CLI sets 24 h.
   */
  abandonedWritesAgeMs?: number;
  /** Clock (tests). */
  now?: () => Date;
  /** Reads in flight (default 16). */
  concurrency?: number;
  /** Keys per delete request (default 1000). */
  batchSize?: number;
  onProgress?: (message: string) => void;
}

interface PrunedRecord {
  key: string;
  repository: string;
  tag?: string;
  digest: string;
  backedUpAt: string;
}

export interface PruneReport {
  dryRun: boolean;
  rule: { keepLast?: number; keepDays?: number; graceSeconds: number };
  startedAt: string;
  finishedAt: string;
  records: { total: number; kept: number; dropped: number };
  /** Records deleted (or, in a dry run, that would be). */
  droppedRecords: PrunedRecord[];
  blobs: {
    total: number;
    totalBytes: number;
    /** Blobs some remaining record (or a fresh manifest) needs. */
    referenced: number;
    /** Unreferenced but modified within the grace period: kept. */
    withinGrace: number;
    /** Deleted (dry run: would be deleted). */
    deleted: number;
    /** Bytes of the deleted blobs that are gone (dry run: would be). */
    bytesFreed: number;
  };
  /**
   * Versioned S3 buckets: deletions (blobs and records) that left a delete marker. Their data stays as
   * noncurrent versions until the bucket's lifecycle expires them; `bytesNoncurrent` is the blobs' part.
   */
  deleteMarkers: number;
  bytesNoncurrent: number;
  /** Objects S3 Object Lock retains: left in place. Not an error. */
  locked: { key: string; detail: string }[];
  /** Deletions that failed for another reason. */
  failed: { key: string; error: string }[];
  /** Remaining records whose manifest tree could not be read; any of these skips the sweep. */
  problems: PruneProblem[];
  /** Records (or fresh manifests) written during the sweep that name a blob it deleted. */
  conflicts: { key: string; blob: string }[];
  sweep: 'done' | 'dry-run' | 'skipped';
  sweepSkippedReason?: string;
  /** Leftovers of killed runs removed (dry run: would be), when abandonedWritesAgeMs was set; failures are in `failed`. */
  abandonedWrites?: AbandonedWrites['removed'];
}

interface Entry extends RetentionEntry {
  parsed: CatalogKey;
  backedUpAt: string;
}

export async function pruneStore(store: BackupStore | ObjectStore, options: PruneOptions): Promise<PruneReport> {
  assertRetentionRule(options);
  const objects: ObjectStore = STORE_OBJECTS in store ? storeObjects(store) : store;
  const clock = options.now ?? (() => new Date());
  const started = clock();
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  if (!(Number.isFinite(graceMs) && graceMs >= 0)) throw new RangeError(`grace must be >= 0 ms, got ${graceMs}`);
  const cutoff = started.getTime() - graceMs;
  const concurrency = options.concurrency ?? 16;
  const batchSize = options.batchSize ?? 1000;
  const dryRun = options.dryRun === true;
  const progress = options.onProgress ?? (() => undefined);
  const walker = new ReferenceWalker(objects, concurrency);

  const report: PruneReport = {
    dryRun,
    rule: {
      ...(options.keepLast !== undefined ? { keepLast: options.keepLast } : {}),
      ...(options.keepDays !== undefined ? { keepDays: options.keepDays } : {}),
      graceSeconds: graceMs / 1000,
    },
    startedAt: started.toISOString(),
    finishedAt: '',
    records: { total: 0, kept: 0, dropped: 0 },
    droppedRecords: [],
    blobs: { total: 0, totalBytes: 0, referenced: 0, withinGrace: 0, deleted: 0, bytesFreed: 0 },
    deleteMarkers: 0,
    bytesNoncurrent: 0,
    locked: [],
    failed: [],
    problems: [],
    conflicts: [],
    sweep: dryRun ? 'dry-run' : 'done',
  };

  // ---- Catalog and retention -----------------------------------------------------------------
  // The one listing of the store this prune decides from: only these blobs can be candidates.
  progress('listing the catalog and blobs');
  const [catalogKeys, blobs] = await Promise.all([listRecords(objects), listBlobs(objects)]);
  const seenRecords = new Set(catalogKeys.map((k) => k.key));
  const seenBlobs = new Set<string>();
  const unreadable: CatalogKey[] = [];
  const entries = (
    await mapLimited(catalogKeys, concurrency, async (k): Promise<Entry | undefined> => {
      if (k.kind === 'tag') {
        const time = parseCompactTime(k.time);
        return {
          key: k.key,
          group: `${k.repository}\0${k.tag}`,
          untagged: false,
          time: time.getTime(),
          parsed: k,
          backedUpAt: time.toISOString(),
        };
      }
      try {
        const raw = await readRecordJson<{ backedUpAt?: unknown }>(objects, k.key);
        const time = typeof raw.backedUpAt === 'string' ? Date.parse(raw.backedUpAt) : NaN;
        if (Number.isNaN(time)) throw new Error('no backedUpAt');
        return { key: k.key, group: `${k.repository}\0`, untagged: true, time, parsed: k, backedUpAt: new Date(time).toISOString() };
      } catch (error) {
        if (error instanceof NotFoundError) return undefined; // deleted meanwhile
        unreadable.push(k); // never drop what cannot be dated; its image is still marked
        return undefined;
      }
    })
  ).filter((e): e is Entry => e !== undefined);
  await assignTagValues(objects, entries, concurrency);
  const { kept, dropped } = applyRetention(entries, options, started);
  report.records.total = entries.length + unreadable.length;
  report.droppedRecords = dropped.map((e) => ({
    key: e.key,
    repository: e.parsed.repository,
    ...(e.parsed.kind === 'tag' ? { tag: e.parsed.tag } : {}),
    digest: e.parsed.digest,
    backedUpAt: e.backedUpAt,
  }));

  // Records stay in the catalog when they are locked or their delete failed.
  const remaining: CatalogKey[] = [...kept.map((e) => e.parsed), ...unreadable];
  if (!dryRun && dropped.length > 0) {
    progress(`deleting ${dropped.length} catalog record(s)`);
    const result = await deleteKeys(
      objects,
      dropped.map((e) => e.key),
    );
    tallyDeletes(report, result, new Map());
    const gone = new Set(result.deleted.map((d) => d.key));
    for (const e of dropped) if (!gone.has(e.key)) remaining.push(e.parsed);
    report.droppedRecords = report.droppedRecords.filter((r) => gone.has(r.key));
  }
  report.records.dropped = report.droppedRecords.length;
  report.records.kept = report.records.total - report.records.dropped;

  // ---- Mark ------------------------------------------------------------------------------------
  progress(`marking what ${remaining.length} record(s) reference`);
  const marker = new Marker(objects, walker, concurrency);
  const marked = marker.marked;
  report.problems.push(...(await marker.markRecords(remaining)).problems);
  // Fresh small blobs that are manifests: images a running backup has stored but not yet recorded.
  const freshManifestCandidates = (list: readonly BlobInfo[]) =>
    list.filter((b) => !seenBlobs.has(b.key) && b.lastModified.getTime() >= cutoff && b.size <= MAX_MANIFEST_BYTES).map((b) => b.digest);
  await marker.markFresh(freshManifestCandidates(blobs));
  for (const b of blobs) seenBlobs.add(b.key);
  report.blobs.total = blobs.length;
  report.blobs.totalBytes = blobs.reduce((sum, b) => sum + b.size, 0);
  report.blobs.referenced = blobs.filter((b) => marked.has(b.digest)).length;
  report.blobs.withinGrace = blobs.filter((b) => !marked.has(b.digest) && b.lastModified.getTime() >= cutoff).length;
  const candidates = blobs.filter((b) => !marked.has(b.digest) && b.lastModified.getTime() < cutoff);

  if (report.problems.length > 0) {
    report.sweep = 'skipped';
    report.sweepSkippedReason = `${report.problems.length} remaining image(s) cannot be walked (missing or corrupt manifests; run verify): what they reference is unknown`;
  }

  if (dryRun) {
    report.blobs.deleted = candidates.length;
    report.blobs.bytesFreed = candidates.reduce((sum, b) => sum + b.size, 0);
  } else if (report.sweep === 'done' && candidates.length > 0) {
    // ---- Sweep ---------------------------------------------------------------------------------
    // Lists the catalog and blobs/ again; marks records and fresh manifests that appeared since the
    // last pass. Returns what each new root references, for the conflict check.
    const recheck = async (): Promise<{ problems: PruneProblem[]; roots: Map<string, string[]> }> => {
      const [records, now] = await Promise.all([listRecords(objects), listBlobs(objects)]);
      const fresh = records.filter((k) => !seenRecords.has(k.key));
      for (const k of fresh) seenRecords.add(k.key);
      const { refsOf: roots, problems } = await marker.markRecords(fresh);
      const freshManifests = await marker.markFresh(freshManifestCandidates(now));
      for (const b of now) seenBlobs.add(b.key);
      for (const [digest, refs] of freshManifests) roots.set(blobKey(digest), refs);
      return { problems, roots };
    };

    const sizes = new Map(candidates.map((b) => [b.key, b.size]));
    const deletedDigests = new Set<string>();
    const order = await deletionOrder(candidates, walker, { concurrency, maxManifestBytes: MAX_MANIFEST_BYTES });
    progress('checking for records written since the listing');
    const { problems } = await recheck();
    if (problems.length > 0) {
      report.problems.push(...problems);
      report.sweep = 'skipped';
      report.sweepSkippedReason = `stopped: ${problems.length} image(s) recorded during the prune cannot be walked`;
    }
    let done = 0;
    for (const phase of report.sweep === 'done' ? order.phases : []) {
      for (let i = 0; i < phase.length; i += batchSize) {
        const slice = phase.slice(i, i + batchSize);
        done += slice.length;
        const batch = slice.filter((b) => !marked.has(b.digest));
        if (batch.length === 0) continue;
        progress(`deleting ${batch.length} blob(s) (${done}/${candidates.length})`);
        const result = await deleteKeys(
          objects,
          batch.map((b) => b.key),
        );
        tallyDeletes(report, result, sizes);
        for (const d of result.deleted) {
          const digest = digestOfBlobKey(d.key);
          if (digest) deletedDigests.add(digest);
        }
        // A manifest that stays (locked, or its delete failed) keeps what it references.
        for (const { key } of [...result.locked, ...result.failed]) {
          const digest = digestOfBlobKey(key);
          if (digest) await marker.markKept(digest);
        }
      }
    }
    if (order.unreadable.length > 0 && report.sweep === 'done') {
      report.sweep = 'skipped';
      report.sweepSkippedReason = `${order.unreadable.length} unreferenced blob(s) could not be read to tell whether they are manifests: unreferenced manifests were deleted, configs and layers kept`;
    }
    // Anything recorded while the blobs were deleted that names a deleted blob is a conflict.
    if (deletedDigests.size > 0) {
      const { roots } = await recheck();
      for (const [key, refs] of roots) for (const d of refs) if (deletedDigests.has(d)) report.conflicts.push({ key, blob: d });
    }
  }
  if (options.abandonedWritesAgeMs !== undefined && objects.removeAbandonedWrites) {
    try {
      const leftovers = await objects.removeAbandonedWrites(new Date(started.getTime() - options.abandonedWritesAgeMs), { dryRun });
      report.abandonedWrites = leftovers.removed;
      report.failed.push(...leftovers.failed);
    } catch (error) {
      report.failed.push({ key: '(abandoned writes)', error: errorText(error) });
    }
  }
  report.finishedAt = clock().toISOString();
  return report;
}

function tallyDeletes(report: PruneReport, result: DeleteManyResult, blobSizes: Map<string, number>): void {
  for (const d of result.deleted) {
    const size = blobSizes.get(d.key);
    if (d.deleteMarker) report.deleteMarkers++;
    if (size === undefined) continue;
    report.blobs.deleted++;
    if (d.deleteMarker) report.bytesNoncurrent += size;
    else report.blobs.bytesFreed += size;
  }
  report.locked.push(...result.locked);
  report.failed.push(...result.failed);
}
