// One repository of a backup store (BackupRepository, the store's ImageRepository): tag resolution,
// listing, manifest and blob reads and writes, catalog records, tombstones and archive records.
import { STORE_OBJECTS, storeObjects } from './store-objects.ts';
import type { Readable } from 'node:stream';
import type { ImageListing, ImageReference, ImageRepository } from '../model/endpoint.ts';
import { assertDigest, digestHex } from '../model/digest.ts';
import { blobsOf, childManifests, isIndex, MediaType, type Descriptor, type Manifest } from '../model/manifest.ts';
import {
  blobKey,
  CatalogRecord,
  isArchiveRecord,
  compactTime,
  digestRecordKey,
  tagRecordKey,
  tombstoneKey,
  type CatalogKey,
} from './layout.ts';
import { mapLimited } from '../limiter.ts';
import type { DeletedTag } from '../../schema/contract.ts';
import { currentRecord, readCatalogIndex, readTagEntries, timeAfter } from './catalog-index.ts';
import { writeJson, type ObjectStore } from './object-store.ts';
import { IncompleteImageError, ManifestNotFoundError, type RejectedRecord } from './store-errors.ts';
import { validTag } from '../model/reference.ts';

/** Every record of one repository, oldest first. */
export interface RepositoryHistory {
  repository: string;
  tags: { tag: string; records: CatalogRecord[] }[];
  untagged: CatalogRecord[];
}

/**
 * What a repository uses of its store. BackupStore implements it; the interface keeps this module
 * from importing backup-store.ts (which constructs repositories), so the two stay acyclic.
 */
export interface RepositoryStore {
  readonly [STORE_OBJECTS]: ObjectStore;
  readonly description: string;
  readonly asOf?: Date;
  readonly runId?: string;
  readonly concurrency: number;
  readonly now: () => Date;
  readRecord(key: string): Promise<CatalogRecord>;
  readRecords(keys: readonly CatalogKey[]): Promise<(CatalogRecord | undefined)[]>;
  noteRejected(rejected: RejectedRecord): void;
  history(repository: string): Promise<RepositoryHistory>;
  readManifest(descriptor: { digest: string; mediaType?: string; size?: number }): Promise<Manifest>;
  hasContent(descriptor: { digest: string; size: number }): Promise<boolean>;
  notePresence(digest: string, size: number | undefined): void;
  assertWritable(): void;
  asOfText(): string;
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
    readonly store: RepositoryStore,
    readonly name: string,
  ) {}

  private get objects(): ObjectStore {
    return storeObjects(this.store);
  }

  get location(): string {
    return this.store.description;
  }

  /** The record key of the tag's current value (at the store's asOf), or undefined (none yet, or deleted at the source). */
  async resolveTag(tag: string): Promise<Extract<CatalogKey, { kind: 'tag' }> | undefined> {
    validTag(tag);
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
    if (tag !== undefined) validTag(tag);
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
      if (latest?.kind === 'value' && latest.record.digest === descriptor.digest && !isArchiveRecord(latest.record)) return;
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
    validTag(tag);
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
      validTag(tag);
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
    validTag(tag);
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
