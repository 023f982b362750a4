// The backup store: an ImageEndpoint on top of any ObjectStore, so the copy engine writes to (backup)
// and reads from (restore) a store exactly as it does a registry. The key layout, the record format
// and the crash-safety invariant are documented in layout.ts. One repository: backup-repository.ts.
import type { Readable } from 'node:stream';
import type { ImageEndpoint } from '../model/endpoint.ts';
import type { Manifest } from '../model/manifest.ts';
import {
  blobKey,
  BLOBS_PREFIX,
  CATALOG_PREFIX,
  compactTime,
  type CatalogRecord,
  digestRecordKey,
  parseCatalogKey,
  parseCompactTime,
  settingsCheckedKey,
  type CatalogKey,
} from './layout.ts';
import type { RepositorySettings } from '../../schema/repository-settings.ts';
import { mapLimited } from '../limiter.ts';
import { NotFoundError, writeJson, type ObjectStore, type PutOptions } from './object-store.ts';
import { InvalidRecordError, isFutureTime, MAX_RECORD_BYTES, parseCatalogRecord, readCapped } from './record.ts';
import { errorText } from '../redact.ts';
import { readStoredManifest } from './stored-manifest.ts';
import { BackupRepository, type RepositoryHistory, type RepositoryStore } from './backup-repository.ts';
import { ManifestNotFoundError, ObjectTooLargeError, ReadOnlyStoreError, type RejectedRecord } from './store-errors.ts';
import { readRepositorySettings, writeRepositorySettings } from './store-settings.ts';
import { RunFiles } from './run-files.ts';
import { STORE_OBJECTS } from './store-objects.ts';
import { readCatalogIndex, type CatalogIndex } from './catalog-index.ts';
import {
  markRepositoryDeleted,
  storedRepositories,
  unmarkRepositoryDeleted,
  type DeletedRepositoryMarker,
  type StoredRepositories,
} from './stored-repositories.ts';
import { validRepository } from '../model/reference.ts';

export interface BackupStoreOptions {
  /**
   * Point in time: every tag resolves to its latest record backed up at or before this instant, and
   * images first backed up later are not listed. A store opened with asOf is read-only.
   */
  asOf?: string | Date;
  /** Recorded in every catalog record this store writes. */
  runId?: string;
  /** HEAD/GET requests in flight for reference checks and catalog reads (default 16). */
  concurrency?: number;
  /** Clock for record times (tests). */
  now?: () => Date;
  /** Called once per catalog record a reader skipped (see record.ts); also kept in `rejectedRecords`. */
  onRejectedRecord?: (rejected: RejectedRecord) => void;
}

const MAX_CACHED_RECORDS = 50_000;
const PRESENCE_TTL_MS = 10 * 60 * 1000;

export class BackupStore implements ImageEndpoint, RepositoryStore {
  readonly description: string;
  readonly asOf?: Date;
  readonly runId?: string;
  readonly concurrency: number;
  readonly now: () => Date;
  /** The files of runs under runs/ (batches, results, reports, status marks). */
  readonly runs: RunFiles;
  /** The objects beneath, for core/store's own modules only (store-objects.ts). */
  readonly [STORE_OBJECTS]: ObjectStore;
  /** Records are immutable, so reads are cached for the life of this object. */
  private readonly records = new Map<string, Promise<CatalogRecord>>();
  private readonly presence = new Map<string, { size: number | undefined; at: number }>();
  private readonly rejected = new Map<string, RejectedRecord>();

  constructor(
    private readonly objects: ObjectStore,
    private readonly options: BackupStoreOptions = {},
  ) {
    this[STORE_OBJECTS] = objects;
    this.runs = new RunFiles(objects);
    this.description = objects.description;
    if (options.asOf !== undefined) {
      const asOf = new Date(options.asOf);
      if (Number.isNaN(asOf.getTime())) throw new RangeError(`invalid asOf time ${JSON.stringify(options.asOf)}`);
      this.asOf = asOf;
    }
    this.runId = options.runId;
    this.concurrency = options.concurrency ?? 16;
    this.now = options.now ?? (() => new Date());
  }

  /** The same store seen at another point in time (read-only). */
  atTime(asOf: string | Date): BackupStore {
    return new BackupStore(this.objects, { ...this.options, asOf });
  }

  async listRepositories(): Promise<string[]> {
    const names = new Set<string>();
    for await (const object of this.objects.list(CATALOG_PREFIX)) {
      const parsed = parseCatalogKey(object.key);
      if (parsed && this.visible(parsed)) names.add(parsed.repository);
    }
    return [...names].sort();
  }

  repository(name: string): BackupRepository {
    validRepository(name);
    return new BackupRepository(this, name);
  }

  /** Record keys of one repository (parsed, not read): tag records oldest first, then digest records. */
  async catalogKeys(repository: string): Promise<CatalogKey[]> {
    validRepository(repository);
    const keys: CatalogKey[] = [];
    for (const prefix of [`${CATALOG_PREFIX}${repository}/_tags/`, `${CATALOG_PREFIX}${repository}/_digests/`]) {
      for await (const object of this.objects.list(prefix)) {
        const parsed = parseCatalogKey(object.key);
        if (parsed && parsed.repository === repository) keys.push(parsed);
      }
    }
    return keys;
  }

  /** Reads (and caches) one catalog record, checked against its key (InvalidRecordError if it disagrees). */
  readRecord(key: string): Promise<CatalogRecord> {
    let record = this.records.get(key);
    if (!record) {
      if (this.records.size >= MAX_CACHED_RECORDS) this.records.clear();
      record = readCapped(this.objects, key, MAX_RECORD_BYTES).then(
        (bytes) => parseCatalogRecord(key, bytes, this.clockForReads()),
        (error: unknown) => {
          // Too large is the record's fault (rejected); a failed read says nothing about it (verify: unreadable).
          if (error instanceof ObjectTooLargeError) throw new InvalidRecordError(key, errorText(error));
          throw error;
        },
      );
      this.records.set(key, record);
      record.catch(() => this.records.delete(key));
    }
    return record;
  }

  /**
   * Reads records for a reader that can go on without a bad one: a record that is rejected (see
   * record.ts) or vanished is left out (undefined) and reported once in `rejectedRecords`.
   */
  async readRecords(keys: readonly CatalogKey[]): Promise<(CatalogRecord | undefined)[]> {
    return mapLimited(keys, this.concurrency, async (k) => {
      try {
        return await this.readRecord(k.key);
      } catch (error) {
        if (!(error instanceof InvalidRecordError) && !(error instanceof NotFoundError)) throw error;
        this.reject(k, error instanceof InvalidRecordError ? error.message : `catalog record ${k.key} vanished while reading`);
        return undefined;
      }
    });
  }

  /** Records readers left out so far (each once), for the run's notes and the CLI's warnings. */
  rejectedRecords(): RejectedRecord[] {
    return [...this.rejected.values()];
  }

  private reject(k: CatalogKey, reason: string): void {
    this.noteRejected({ key: k.key, repository: k.repository, ...(k.kind === 'tag' ? { tag: k.tag } : {}), reason });
  }

  /** Records (once) that a reader left a record out. */
  noteRejected(rejected: RejectedRecord): void {
    if (this.rejected.has(rejected.key)) return;
    this.rejected.set(rejected.key, rejected);
    this.options.onRejectedRecord?.(rejected);
  }

  /** Every valid record of a repository (ignores asOf): each tag's values oldest first, and untagged images. */
  async history(repository: string): Promise<RepositoryHistory> {
    const keys = await this.catalogKeys(repository);
    const records = await this.readRecords(keys);
    const tags = new Map<string, CatalogRecord[]>();
    const untagged: CatalogRecord[] = [];
    keys.forEach((k, i) => {
      const record = records[i];
      if (!record) return;
      if (k.kind === 'tag') {
        const list = tags.get(k.tag) ?? [];
        list.push(record);
        tags.set(k.tag, list);
      } else {
        untagged.push(record);
      }
    });
    untagged.sort((a, b) => a.backedUpAt.localeCompare(b.backedUpAt));
    return {
      repository,
      tags: [...tags].map(([tag, recs]) => ({ tag, records: recs })).sort((a, b) => (a.tag < b.tag ? -1 : 1)),
      untagged,
    };
  }

  /**
   * The catalog records for work items (as planned from this store's listImages): a tag resolves to
   * its current value (at asOf when set), a digest to its untagged record. For `ecr-backup list`.
   */
  async describe(items: readonly { repository: string; tag?: string; digest?: string }[]): Promise<CatalogRecord[]> {
    return mapLimited(items, this.concurrency, async (item) => {
      const repository = this.repository(item.repository);
      if (item.tag !== undefined) {
        const current = await repository.resolveTag(item.tag);
        if (!current) throw new ManifestNotFoundError(`${item.repository}:${item.tag} is not in ${this.description}${this.asOfText()}`);
        return this.readRecord(current.key);
      }
      if (item.digest === undefined) throw new RangeError('an item needs a tag or a digest');
      try {
        return await this.readRecord(digestRecordKey(item.repository, item.digest));
      } catch (error) {
        if (error instanceof NotFoundError)
          throw new ManifestNotFoundError(`${item.repository}@${item.digest} is not in ${this.description}`);
        throw error;
      }
    });
  }

  /** A repository's settings as last recorded (at or before asOf when set), or undefined when none were. */
  repositorySettings(repository: string): Promise<RepositorySettings | undefined> {
    return readRepositorySettings(this.objects, repository, this.asOf);
  }

  /** Records a repository's settings when they changed (see store-settings.ts). True when written. */
  async recordRepositorySettings(repository: string, settings: RepositorySettings): Promise<boolean> {
    this.assertWritable();
    return writeRepositorySettings(this.objects, repository, settings, { now: this.now, ...(this.runId ? { runId: this.runId } : {}) });
  }

  /** Number and total size of stored blobs (layers, configs and manifests, each counted once). */
  async blobUsage(): Promise<{ blobs: number; bytes: number }> {
    let blobs = 0;
    let bytes = 0;
    for await (const object of this.objects.list(BLOBS_PREFIX)) {
      blobs++;
      bytes += object.size;
    }
    return { blobs, bytes };
  }

  /** The repository's catalog as keys (one LIST), for deciding what changed without reading records. */
  catalogIndex(repository: string): Promise<CatalogIndex> {
    return readCatalogIndex(this.objects, repository);
  }

  /** Repositories with records, and those marked deleted at the source (catalog/_deleted/). */
  storedRepositories(): Promise<StoredRepositories> {
    return storedRepositories(this.objects);
  }

  markRepositoryDeleted(marker: DeletedRepositoryMarker): Promise<void> {
    return markRepositoryDeleted(this.objects, marker);
  }

  unmarkRepositoryDeleted(repository: string): Promise<void> {
    return unmarkRepositoryDeleted(this.objects, repository);
  }

  /**
   * Notes that a repository's settings were read at `at` while ECR described them as `describedHash`
   * (core/engine/settings-cadence.ts); create-if-absent.
   */
  async recordSettingsChecked(repository: string, at: Date, describedHash: string, marker: object): Promise<void> {
    await writeJson(this.objects, settingsCheckedKey(repository, compactTime(at), describedHash), marker, { ifAbsent: true });
  }

  /** A stored blob's bytes as they are (not verified: repair checks them itself). */
  storedBlob(digest: string): Promise<Readable> {
    return this.objects.get(blobKey(digest));
  }

  /**
   * Writes a blob, checked against its digest and size, replacing a stored one unless
   * `options.ifAbsent`: only repair replaces (putBlob and putManifest never replace stored history).
   */
  async replaceBlob(descriptor: { digest: string; size: number }, body: Readable | Buffer, options: PutOptions = {}): Promise<void> {
    await this.objects.put(blobKey(descriptor.digest), body, {
      ...options,
      expected: { digest: descriptor.digest, size: descriptor.size },
    });
    this.notePresence(descriptor.digest, descriptor.size);
  }

  /** A docker-archive's stored size (core/archive), or undefined when it is not stored. */
  async archiveSize(key: string): Promise<number | undefined> {
    return (await this.objects.head(key))?.size;
  }

  /** Writes a docker-archive tar (the record that names it is written after). */
  async putArchive(key: string, body: Readable, contentType: string): Promise<void> {
    await this.objects.put(key, body, { contentType });
  }

  /** Streams a stored docker-archive (the caller verifies it against its record). */
  openArchive(key: string): Promise<Readable> {
    return this.objects.get(key);
  }

  /** Reads a manifest blob and verifies it against its descriptor. */
  async readManifest(descriptor: { digest: string; mediaType?: string; size?: number }): Promise<Manifest> {
    const read = await readStoredManifest(this.objects, descriptor);
    if (read.ok) return read.manifest;
    if (read.problem === 'missing') throw new ManifestNotFoundError(`manifest ${descriptor.digest} is not in ${this.description}`);
    throw read.error;
  }

  /**
   * True when the blob is stored with the descriptor's size. Answers are remembered for a few
   * minutes (and puts noted), so the copy engine's check before a copy and putManifest's check of
   * the same manifest and its references cost one HEAD per object, not two. An "absent" answer that
   * went stale only leads to a create-if-absent put of the same bytes; a "present" one is kept
   * short so a long run never leans on a check older than prune's grace period.
   */
  async hasContent(descriptor: { digest: string; size: number }): Promise<boolean> {
    const known = this.presence.get(descriptor.digest);
    if (known && performance.now() - known.at < PRESENCE_TTL_MS) return known.size === descriptor.size;
    const head = await this.objects.head(blobKey(descriptor.digest));
    this.notePresence(descriptor.digest, head?.size);
    return head !== undefined && head.size === descriptor.size;
  }

  /** Remembers that a blob is stored with `size` (undefined: absent). */
  notePresence(digest: string, size: number | undefined): void {
    if (this.presence.size >= MAX_CACHED_RECORDS) this.presence.clear();
    this.presence.set(digest, { size, at: performance.now() });
  }

  /**
   * Whether a parsed record key is visible at this store's asOf (digest records are checked after
   * reading). A tag key dated in the future is never visible: it would pin the tag and hide every
   * later backup; it is reported in `rejectedRecords`.
   */
  visible(key: CatalogKey): boolean {
    if (key.kind !== 'tag') return true;
    if (!this.plausible(key)) return false;
    return this.asOf === undefined || parseCompactTime(key.time).getTime() <= this.asOf.getTime();
  }

  /** "Now" for judging future-dated records: the wall clock, or the store's clock when it is ahead (tests). */
  private clockForReads(): Date {
    return new Date(Math.max(Date.now(), this.now().getTime()));
  }

  /** False (and reported) for a tag key dated beyond the allowed clock skew. */
  plausible(key: CatalogKey): boolean {
    if (key.kind !== 'tag' || !isFutureTime(parseCompactTime(key.time), this.clockForReads())) return true;
    this.reject(key, `catalog record ${key.key} rejected: dated ${parseCompactTime(key.time).toISOString()}, in the future`);
    return false;
  }

  assertWritable(): void {
    if (this.asOf) throw new ReadOnlyStoreError(`${this.description} was opened as of ${this.asOf.toISOString()} and is read-only`);
  }

  asOfText(): string {
    return this.asOf ? ` as of ${this.asOf.toISOString()}` : '';
  }
}
