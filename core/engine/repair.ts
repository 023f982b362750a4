// Repair: after verify found blobs or manifests missing or corrupt, copy them again from the source
// registry through the copy engine (the same verified putBlob as a backup), then verify again.
//
// A backup alone cannot do this: the image's root manifest is present, so the engine reports it
// unchanged and copies nothing. Repair therefore copies each damaged image through a destination
// view of the store that (a) walks every manifest of the image again, so damage below an intact
// manifest is reached, and (b) reports a damaged object as absent, so it is written again. An object
// is replaced only after it is read again and still fails its digest (or is still absent): a good
// object is never replaced, even one that a concurrent backup fixed since verify ran.
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import type { ImageEndpoint, ImageListing, ImageReference, ImageRepository } from '../model/endpoint.ts';
import type { Descriptor, Manifest } from '../model/manifest.ts';
import { DigestMismatchError, verifyingStream } from '../model/digest.ts';
import { mapLimited } from '../limiter.ts';
import type { BackupRepository } from '../store/backup-repository.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { NotFoundError } from '../store/object-store.ts';
import { verifyStore, type VerifyProblem, type VerifyReport } from '../store/verify.ts';
import { Copier } from './copy.ts';
import type { ImageResult } from '../../schema/contract.ts';

export interface RepairOptions {
  /** Images repaired at once (default 4; blob transfers: twice this). */
  concurrency?: number;
  /** Only these repositories (default: every repository in the catalog). */
  repositories?: readonly string[];
}

/** An image repair could not complete: the source no longer has it, or part of it. */
interface UnrepairedImage {
  repository: string;
  /** Tags whose (current or past) value is this image; empty for an untagged image. */
  tags: string[];
  digest: string;
  /** The damaged objects verify reported for this image. */
  damaged: string[];
  error: string;
}

export interface RepairReport {
  /** What verify found before the repair. */
  before: VerifyReport;
  /** Objects (blobs and manifests) written again, by digest. */
  replaced: string[];
  /** Images with damage whose copy from the source failed. */
  unrepaired: UnrepairedImage[];
  /** Problems repair does not handle: catalog records, docker-archive tars, objects it could not read. */
  skipped: VerifyProblem[];
  /** What verify finds after the repair. */
  after: VerifyReport;
}

export const repairable = (p: VerifyProblem) => (p.problem === 'missing' || p.problem === 'corrupt') && p.blob.startsWith('sha256:');

export async function repairStore(store: BackupStore, source: ImageEndpoint, options: RepairOptions = {}): Promise<RepairReport> {
  store.assertWritable();
  const scope = options.repositories ? { repositories: options.repositories } : {};
  const before = await verifyStore(store, scope);
  const damaged = new Set(before.problems.filter(repairable).map((p) => p.blob));
  const images = new Map<string, { repository: string; digest: string; tags: Set<string>; damaged: Set<string> }>();
  for (const p of before.problems.filter(repairable)) {
    const id = `${p.repository}@${p.digest}`;
    const image = images.get(id) ?? { repository: p.repository, digest: p.digest, tags: new Set<string>(), damaged: new Set<string>() };
    if (p.tag !== undefined) image.tags.add(p.tag);
    image.damaged.add(p.blob);
    images.set(id, image);
  }
  const concurrency = options.concurrency ?? 4;
  const copier = new Copier({ blobConcurrency: 2 * concurrency });
  const checker = new DamageCheck(store, damaged);
  const unrepaired: UnrepairedImage[] = [];
  await mapLimited([...images.values()], concurrency, async (image) => {
    const result = await repairImage(copier, checker, source.repository(image.repository), image.digest);
    if (result.status === 'failed') {
      unrepaired.push({
        repository: image.repository,
        tags: [...image.tags].sort(),
        digest: image.digest,
        damaged: [...image.damaged].sort(),
        error: result.error ?? 'copy failed',
      });
    }
  });
  unrepaired.sort((a, b) => a.repository.localeCompare(b.repository) || a.digest.localeCompare(b.digest));
  const after = await verifyStore(store, scope);
  return { before, replaced: [...checker.replaced].sort(), unrepaired, skipped: before.problems.filter((p) => !repairable(p)), after };
}

/**
 * Copies one image again from `source` in repair mode (the engine walks all of it; only objects
 * `check` was told are damaged, and still are, get replaced). Failures are returned, as copyImage does.
 */
export function repairImage(copier: Copier, check: DamageCheck, source: ImageRepository, digest: string): Promise<ImageResult> {
  return copier.copyImage(source, new RepairingRepository(check.store.repository(source.name), check), { digest });
}

/** Decides, once per object, whether a damaged object is still damaged now (and so may be replaced). */
export class DamageCheck {
  readonly replaced = new Set<string>();
  private readonly answers = new Map<string, Promise<'missing' | 'corrupt' | undefined>>();

  constructor(
    readonly store: BackupStore,
    private readonly damaged: ReadonlySet<string>,
  ) {}

  /** True when `d` was reported damaged and still is: absent, or its bytes fail its digest and size. */
  async stillDamaged(d: { digest: string; size: number }): Promise<boolean> {
    return (await this.damage(d)) !== undefined;
  }

  /** How `d` is still damaged: absent, or present with bytes that fail its digest and size (corrupt). */
  damage(d: { digest: string; size: number }): Promise<'missing' | 'corrupt' | undefined> {
    if (!this.damaged.has(d.digest)) return Promise.resolve(undefined);
    let answer = this.answers.get(d.digest);
    if (!answer) {
      answer = this.check(d);
      this.answers.set(d.digest, answer);
    }
    return answer;
  }

  private async check(d: { digest: string; size: number }): Promise<'missing' | 'corrupt' | undefined> {
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    try {
      await pipeline(await this.store.storedBlob(d.digest), verifyingStream(d), sink);
      return undefined;
    } catch (error) {
      // Any other failure (a read error) says nothing about the bytes: it is thrown, nothing is replaced.
      if (error instanceof NotFoundError) return 'missing';
      if (error instanceof DigestMismatchError) return 'corrupt';
      throw error;
    }
  }

  /**
   * Only a corrupt object is overwritten; anything else is created if absent (S3 If-None-Match), which
   * is all the deployed backup role may do in blobs/ (write-once): the workflow mends missing objects,
   * a corrupt one needs `verify --repair` with credentials that may replace it.
   */
  async writeOptions(d: { digest: string; size: number }): Promise<{ ifAbsent: boolean }> {
    return { ifAbsent: (await this.damage(d)) !== 'corrupt' };
  }
}

/**
 * The store as the copy engine's destination during a repair: every manifest reads as absent (so the
 * engine walks the whole image again), a damaged object reads as absent until it is written again,
 * and manifests are written by digest only (the catalog records are already there).
 */
class RepairingRepository implements ImageRepository {
  readonly blobsSharedAcrossRepositories = true;
  readonly name: string;
  readonly location: string;

  constructor(
    private readonly inner: BackupRepository,
    private readonly check: DamageCheck,
  ) {
    this.name = inner.name;
    this.location = inner.location;
  }

  listImages(): Promise<ImageListing[]> {
    return this.inner.listImages();
  }

  getManifest(ref: ImageReference): Promise<Manifest> {
    return this.inner.getManifest(ref);
  }

  openBlob(descriptor: Descriptor): Promise<Readable> {
    return this.inner.openBlob(descriptor);
  }

  async hasManifest(): Promise<boolean> {
    return false;
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    if (await this.check.stillDamaged(descriptor)) return false;
    return this.inner.hasBlob(descriptor);
  }

  /**
   * Reached only for a blob absent or still damaged. The store's own putBlob is create-if-absent (stored
   * history is never replaced), so a corrupt blob needs this deliberate, still digest-checked replace.
   */
  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    const store = this.check.store;
    await store.replaceBlob(descriptor, body, await this.check.writeOptions(descriptor));
    this.check.replaced.add(descriptor.digest);
  }

  async putManifest(manifest: Manifest): Promise<void> {
    const { descriptor } = manifest;
    const store = this.check.store;
    if (await this.check.stillDamaged(descriptor)) {
      // A corrupt manifest must be replaced, which the store's create-if-absent manifest put never does.
      await store.replaceBlob(descriptor, manifest.bytes, {
        contentType: descriptor.mediaType,
        ...(await this.check.writeOptions(descriptor)),
      });
      this.check.replaced.add(descriptor.digest);
    } else if (!(await store.hasContent(descriptor))) {
      // Gone since verify ran: stored like any new manifest (after checking its references).
      await this.inner.putManifest(manifest);
      this.check.replaced.add(descriptor.digest);
    }
  }
}
