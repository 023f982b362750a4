// The backup store: an ImageEndpoint on top of any ObjectStore, so the copy engine writes to (backup)
// and reads from (restore) a store exactly as it does a registry. The key layout, the record format
// and the crash-safety invariant are documented in layout.ts.
import type { Readable } from 'node:stream';
import type { ImageEndpoint, ImageListing, ImageReference, ImageRepository } from '../model/endpoint.ts';
import { assertDigest, digestHex } from '../model/digest.ts';
import { blobsOf, childManifests, isIndex, manifestFromBytes, MediaType, type Descriptor, type Manifest } from '../model/manifest.ts';
import {
  assertRepositoryName,
  assertTag,
  blobKey,
  BLOBS_PREFIX,
  CATALOG_PREFIX,
  CatalogRecord,
  compactTime,
  digestRecordKey,
  parseCatalogKey,
  parseCompactTime,
  parseSettingsKey,
  RepositorySettingsRecord,
  settingsPrefix,
  settingsHash,
  settingsRecordKey,
  tagRecordKey,
  tombstoneKey,
  type CatalogKey,
} from './layout.ts';
import { RepositorySettings } from '../../schema/repository-settings.ts';
import { sameRepositorySettings } from '../model/repository-settings.ts';
import { mapLimited } from '../limiter.ts';
import type { DeletedTag } from '../../schema/contract.ts';
import { currentRecord, readCatalogIndex, readTagEntries, timeAfter } from './catalog-index.ts';
import { NotFoundError, readJson, writeJson, type ObjectStore, type PutResult } from './object-store.ts';
import {
  InvalidRecordError,
  isFutureTime,
  MAX_RECORD_BYTES,
  MAX_STORED_MANIFEST_BYTES,
  ObjectTooLargeError,
  parseCatalogRecord,
  readCapped,
} from './record.ts';
import { errorText } from '../redact.ts';

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

/** A catalog record a reader left out: invalid, dated in the future, or disagreeing with its key. */
export interface RejectedRecord {
  key: string;
  repository: string;
  tag?: string;
  reason: string;
}

export class ManifestNotFoundError extends Error {
  override name = 'ManifestNotFoundError';
}

/** putManifest refused: the manifest references content the store does not hold. */
export class IncompleteImageError extends Error {
  override name = 'IncompleteImageError';
  constructor(
    readonly digest: string,
    readonly missing: string[],
  ) {
    super(
      `refusing to store manifest ${digest}: ${missing.length} referenced blob(s)/manifest(s) missing from the store: ` +
        missing.slice(0, 5).join(', ') +
        (missing.length > 5 ? `, ... (${missing.length - 5} more)` : ''),
    );
  }
}

export class ReadOnlyStoreError extends Error {
  override name = 'ReadOnlyStoreError';
}

/** Every record of one repository, oldest first. */
export interface RepositoryHistory {
  repository: string;
  tags: { tag: string; records: CatalogRecord[] }[];
  untagged: CatalogRecord[];
}

const MAX_CACHED_RECORDS = 50_000;
const PRESENCE_TTL_MS = 10 * 60 * 1000;

export class BackupStore implements ImageEndpoint {
  readonly description: string;
  readonly asOf?: Date;
  readonly runId?: string;
  readonly concurrency: number;
  readonly now: () => Date;
  /** Records are immutable, so reads are cached for the life of this object. */
  private readonly records = new Map<string, Promise<CatalogRecord>>();
  private readonly presence = new Map<string, { size: number | undefined; at: number }>();
  private readonly rejected = new Map<string, RejectedRecord>();

  constructor(
    readonly objects: ObjectStore,
    private readonly options: BackupStoreOptions = {},
  ) {
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
    assertRepositoryName(name);
    return new BackupRepository(this, name);
  }

  /** Record keys of one repository (parsed, not read): tag records oldest first, then digest records. */
  async catalogKeys(repository: string): Promise<CatalogKey[]> {
    assertRepositoryName(repository);
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
  async repositorySettings(repository: string): Promise<RepositorySettings | undefined> {
    const latest = await this.latestSettingsKey(repository, { atAsOf: true });
    return latest && (await this.readSettingsRecord(latest.key)).settings;
  }

  /**
   * Records a repository's settings at `catalog/<repository>/_settings/<time>_<hash>.json`, only when they
   * differ from the latest record (unchanged settings cost one LIST: the key carries their fingerprint). True when written.
   */
  async recordRepositorySettings(repository: string, settings: RepositorySettings): Promise<boolean> {
    this.assertWritable();
    const latest = await this.latestSettingsKey(repository, { atAsOf: false });
    const parsed = RepositorySettings.parse(settings);
    const hash = settingsHash(parsed);
    // The key's fingerprint answers the common case (unchanged) without reading the record; a
    // different fingerprint may still be the same settings (policies compare as JSON), so read then.
    if (latest?.hash === hash) return false;
    if (latest && sameRepositorySettings((await this.readSettingsRecord(latest.key)).settings, settings)) return false;
    let time = this.now();
    if (latest) {
      const after = parseCompactTime(latest.time).getTime() + 1;
      if (time.getTime() < after) time = new Date(after);
    }
    const record: RepositorySettingsRecord = {
      repository,
      settings: parsed,
      recordedAt: time.toISOString(),
      ...(this.runId ? { runId: this.runId } : {}),
    };
    await writeJson(this.objects, settingsRecordKey(repository, compactTime(time), hash), record, { ifAbsent: true });
    return true;
  }

  private async latestSettingsKey(repository: string, options: { atAsOf: boolean }) {
    assertRepositoryName(repository);
    let latest: { key: string; time: string; hash?: string } | undefined;
    for await (const object of this.objects.list(settingsPrefix(repository))) {
      const parsed = parseSettingsKey(object.key, repository);
      if (!parsed || (latest && parsed.key <= latest.key)) continue;
      if (options.atAsOf && this.asOf && parseCompactTime(parsed.time).getTime() > this.asOf.getTime()) continue;
      latest = parsed;
    }
    return latest;
  }

  private async readSettingsRecord(key: string): Promise<RepositorySettingsRecord> {
    const bytes = await readCapped(this.objects, key, MAX_RECORD_BYTES);
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new Error(`settings record ${this.description}/${key} is not valid JSON`);
    }
    const parsed = RepositorySettingsRecord.safeParse(raw);
    if (!parsed.success) throw new Error(`settings record ${this.description}/${key} is malformed: ${parsed.error.message}`);
    return parsed.data;
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

  writeJson(key: string, value: unknown, options: { ifAbsent?: boolean } = {}): Promise<PutResult> {
    return writeJson(this.objects, key, value, options);
  }

  readJson<T = unknown>(key: string): Promise<T> {
    return readJson<T>(this.objects, key);
  }

  /** Reads a manifest blob and verifies it against its descriptor. */
  async readManifest(descriptor: { digest: string; mediaType?: string; size?: number }): Promise<Manifest> {
    let bytes: Buffer;
    try {
      bytes = await readCapped(this.objects, blobKey(descriptor.digest), MAX_STORED_MANIFEST_BYTES);
    } catch (error) {
      if (error instanceof NotFoundError) throw new ManifestNotFoundError(`manifest ${descriptor.digest} is not in ${this.description}`);
      throw error;
    }
    assertDigest(bytes, descriptor);
    return manifestFromBytes(bytes, { digest: descriptor.digest, ...(descriptor.mediaType ? { mediaType: descriptor.mediaType } : {}) });
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

/** A tag record as a store listing shows it (what listingIsCurrent compares a backup against). */
export function recordListing(r: CatalogRecord): ImageListing {
  return {
    tag: r.tag!,
    digest: r.digest,
    sizeBytes: r.imageBytes,
    time: r.backedUpAt,
    ...(r.format === 'docker-archive' ? { format: r.format } : {}),
    ...(r.archive
      ? {
          archive: {
            key: r.archive.key,
            platform: r.archive.platform,
            fromIndex: r.mediaType === MediaType.OciIndex || r.mediaType === MediaType.DockerManifestList,
          },
        }
      : {}),
  };
}

export class BackupRepository implements ImageRepository {
  /** blobs/ is one content-addressed space for every repository. */
  readonly blobsSharedAcrossRepositories = true;

  constructor(
    readonly store: BackupStore,
    readonly name: string,
  ) {}

  private get objects(): ObjectStore {
    return this.store.objects;
  }

  get location(): string {
    return this.store.description;
  }

  /** The record key of the tag's current value (at the store's asOf), or undefined (none yet, or deleted at the source). */
  async resolveTag(tag: string): Promise<Extract<CatalogKey, { kind: 'tag' }> | undefined> {
    assertTag(tag);
    return currentRecord(await readTagEntries(this.objects, this.name, tag), this.store.asOf);
  }

  /**
   * The current value of every tag plus untagged images, with backup time and image size. Child
   * manifests of an index are not listed as untagged images even when they were stored by digest.
   */
  async listImages(): Promise<ImageListing[]> {
    const index = await readCatalogIndex(this.objects, this.name);
    for (const f of index.future)
      this.store.noteRejected({
        key: f.key,
        repository: this.name,
        tag: f.tag,
        reason: `catalog record ${f.key} rejected: dated in the future`,
      });
    const current = [...index.tags.values()].map((entries) => currentRecord(entries, this.store.asOf)).filter((k) => k !== undefined);
    const digestKeys = index.digests;
    const tagged = (await this.store.readRecords(current)).filter((r): r is CatalogRecord => r !== undefined);
    const listings: ImageListing[] = tagged.map(recordListing);
    const untagged = await this.store.readRecords(digestKeys);
    for (const r of untagged) {
      if (r && (this.store.asOf === undefined || Date.parse(r.backedUpAt) <= this.store.asOf.getTime())) {
        listings.push({ digest: r.digest, sizeBytes: r.imageBytes, time: r.backedUpAt });
      }
    }
    // Tags in code-unit order, then untagged images by digest.
    const order = (l: ImageListing) => (l.tag !== undefined ? `0${l.tag}` : `1${l.digest}`);
    return listings.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }

  async getManifest(ref: ImageReference): Promise<Manifest> {
    if ('tag' in ref) {
      const current = await this.resolveTag(ref.tag);
      if (!current) throw new ManifestNotFoundError(`${this.name}:${ref.tag} is not in ${this.store.description}${this.store.asOfText()}`);
      const record = await this.store.readRecord(current.key);
      return this.store.readManifest({ digest: record.digest, mediaType: record.mediaType, size: record.manifestSize });
    }
    digestHex(ref.digest);
    return this.store.readManifest({ digest: ref.digest, ...(ref.mediaType ? { mediaType: ref.mediaType } : {}) });
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    return this.objects.get(blobKey(descriptor.digest));
  }

  hasManifest(descriptor: Descriptor): Promise<boolean> {
    return this.store.hasContent(descriptor);
  }

  hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.store.hasContent(descriptor);
  }

  /**
   * Writes the blob. No existence check here: the copy engine has just asked hasBlob, and a
   * concurrent writer of the same digest writes the same bytes to the same key.
   */
  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    try {
      this.store.assertWritable();
    } catch (error) {
      body.destroy();
      throw error;
    }
    // ifAbsent (S3: If-None-Match): stored content is never replaced, whoever writes the same key.
    await this.objects.put(blobKey(descriptor.digest), body, {
      expected: { digest: descriptor.digest, size: descriptor.size },
      ifAbsent: true,
    });
    this.store.notePresence(descriptor.digest, descriptor.size);
  }

  async putManifest(manifest: Manifest, ref?: ImageReference): Promise<void> {
    this.store.assertWritable();
    const tag = ref && 'tag' in ref ? ref.tag : undefined;
    if (tag !== undefined) assertTag(tag);
    const { descriptor } = manifest;
    assertDigest(manifest.bytes, descriptor);
    // Present manifest blob == complete image (the invariant), so re-checking references is only
    // needed for a new manifest (hasContent remembers the copy engine's check, so no second HEAD).
    if (!(await this.store.hasContent(descriptor))) {
      await this.assertReferencesPresent(manifest);
      await this.objects.put(blobKey(descriptor.digest), manifest.bytes, {
        expected: { digest: descriptor.digest, size: descriptor.size },
        ifAbsent: true,
        contentType: descriptor.mediaType,
      });
      this.store.notePresence(descriptor.digest, descriptor.size);
    }
    if (tag !== undefined) {
      const entries = await readTagEntries(this.objects, this.name, tag);
      const latest = entries.at(-1);
      // Same digest in the same format: nothing to record (the key says both; no read needed).
      if (latest?.kind === 'value' && latest.record.digest === descriptor.digest && latest.record.format === 'oci') return;
      const time = timeAfter(entries, this.store.now());
      const record = await this.buildRecord(manifest, tag, time);
      await writeJson(this.objects, tagRecordKey(this.name, tag, compactTime(time), descriptor.digest), record, { ifAbsent: true });
    } else if (ref !== undefined) {
      const key = digestRecordKey(this.name, descriptor.digest);
      if (await this.objects.head(key)) return;
      const record = await this.buildRecord(manifest, undefined, this.store.now());
      await writeJson(this.objects, key, record, { ifAbsent: true });
    }
  }

  /**
   * The latest record of a tag, ignoring asOf (what a new backup compares against), with its key;
   * undefined when the tag has none or its latest entry is a deletion at the source.
   */
  async latestRecord(tag: string): Promise<{ key: string; record: CatalogRecord } | undefined> {
    assertTag(tag);
    const latest = currentRecord(await readTagEntries(this.objects, this.name, tag));
    return latest && { key: latest.key, record: await this.store.readRecord(latest.key) };
  }

  /**
   * Records that these tags were deleted at the source (a tombstone each, at the store's now, kept
   * after each tag's latest entry). Tags whose latest entry is already a tombstone, or that have no
   * record, are left alone. Returns the tombstones written with the digest each tag last held.
   */
  async recordDeletions(tags: readonly string[]): Promise<DeletedTag[]> {
    this.store.assertWritable();
    const written = await mapLimited(tags, this.store.concurrency, async (tag): Promise<DeletedTag | undefined> => {
      assertTag(tag);
      const entries = await readTagEntries(this.objects, this.name, tag);
      const latest = entries.at(-1);
      if (latest?.kind !== 'value') return undefined;
      const time = timeAfter(entries, this.store.now());
      const deleted: DeletedTag = { repository: this.name, tag, lastDigest: latest.record.digest, deletedAt: time.toISOString() };
      await writeJson(
        this.objects,
        tombstoneKey(this.name, tag, compactTime(time)),
        { ...deleted, ...(this.store.runId ? { runId: this.store.runId } : {}) },
        { ifAbsent: true },
      );
      return deleted;
    });
    return written.filter((d) => d !== undefined);
  }

  /**
   * Records a tag's new value stored as a docker-archive (core/archive writes the tar first, then
   * calls this). The record's digest is the source manifest's; its time is kept after the latest one.
   */
  async putArchiveRecord(
    tag: string,
    source: { digest: string; mediaType: string; size: number },
    archive: NonNullable<CatalogRecord['archive']>,
  ): Promise<CatalogRecord> {
    this.store.assertWritable();
    assertTag(tag);
    const time = timeAfter(await readTagEntries(this.objects, this.name, tag), this.store.now());
    const record: CatalogRecord = {
      repository: this.name,
      tag,
      digest: source.digest,
      mediaType: source.mediaType,
      manifestSize: source.size,
      imageBytes: archive.size,
      backedUpAt: time.toISOString(),
      ...(this.store.runId ? { runId: this.store.runId } : {}),
      format: 'docker-archive',
      archive,
    };
    await writeJson(
      this.objects,
      tagRecordKey(this.name, tag, compactTime(time), source.digest, 'docker-archive'),
      CatalogRecord.parse(record),
      { ifAbsent: true },
    );
    return record;
  }

  /** All records of this repository (ignores asOf). */
  history(): Promise<RepositoryHistory> {
    return this.store.history(this.name);
  }

  private async assertReferencesPresent(manifest: Manifest): Promise<void> {
    const referenced = new Map<string, Descriptor>();
    for (const d of [...childManifests(manifest), ...blobsOf(manifest)]) referenced.set(d.digest, d);
    const present = await mapLimited([...referenced.values()], this.store.concurrency, (d) => this.store.hasContent(d));
    const missing = [...referenced.values()].filter((_, i) => !present[i]).map((d) => d.digest);
    if (missing.length > 0) throw new IncompleteImageError(manifest.descriptor.digest, missing);
  }

  /** Builds a record; imageBytes walks index children from the store, counting each blob once. */
  private async buildRecord(manifest: Manifest, tag: string | undefined, time: Date): Promise<CatalogRecord> {
    const sizes = new Map<string, number>([[manifest.descriptor.digest, manifest.descriptor.size]]);
    const visit = async (m: Manifest): Promise<void> => {
      for (const blob of blobsOf(m)) sizes.set(blob.digest, blob.size);
      const children = childManifests(m).filter((c) => !sizes.has(c.digest));
      for (const c of children) sizes.set(c.digest, c.size);
      await mapLimited(children, this.store.concurrency, async (c) => visit(await this.store.readManifest(c)));
    };
    await visit(manifest);
    const children = childManifests(manifest);
    const platforms = children
      .filter((c) => c.platform && !(c.platform.os === 'unknown' && c.platform.architecture === 'unknown'))
      .map((c) => `${c.platform!.os}/${c.platform!.architecture}${c.platform!.variant ? `/${c.platform!.variant}` : ''}`);
    return {
      repository: this.name,
      ...(tag !== undefined ? { tag } : {}),
      digest: manifest.descriptor.digest,
      mediaType: manifest.descriptor.mediaType,
      manifestSize: manifest.descriptor.size,
      imageBytes: [...sizes.values()].reduce((a, b) => a + b, 0),
      ...(isIndex(manifest) ? { platforms } : {}),
      backedUpAt: time.toISOString(),
      ...(this.store.runId ? { runId: this.store.runId } : {}),
    };
  }
}
