// Store verification: for every catalog record (every tag value in the history and every untagged
// image), walk the manifest tree from the store and re-hash every blob it references. Each blob is
// read and hashed once however many images share it; problems are reported per image.
import { ContentHash, DigestMismatchError } from '../model/digest.ts';
import { childManifests, blobsOf, foreignLayersOf, type Descriptor, type Manifest } from '../model/manifest.ts';
import type { BackupStore } from './backup-store.ts';
import { storeObjects } from './store-objects.ts';
import { blobKey, isArchiveRecord, type CatalogRecord } from './layout.ts';
import { createLimiter, mapLimited } from '../limiter.ts';
import { NotFoundError } from './object-store.ts';
import { InvalidRecordError } from './record.ts';
import { readStoredManifest } from './stored-manifest.ts';
import { isDigest } from '../../schema/names.ts';
import { errorText } from '../redact.ts';

type VerifyProblemKind = 'missing' | 'corrupt' | 'unreadable';

export interface VerifyProblem {
  repository: string;
  /** The tag whose (current or past) value is affected; absent for an untagged image. */
  tag?: string;
  /** The image (root manifest) digest. */
  digest: string;
  /** The blob or manifest digest that is missing or bad (or the record key for a bad record). */
  blob: string;
  problem: VerifyProblemKind;
  detail: string;
}

export interface VerifyReport {
  checkedImages: number;
  /** Distinct blobs and manifests read and hashed. */
  checkedBlobs: number;
  checkedBytes: number;
  problems: VerifyProblem[];
  /**
   * Foreign (non-distributable) layers the images reference, each once: external by design (a backup
   * keeps their descriptors, not their bytes), so neither checked nor a problem.
   */
  externalLayers: { digest: string; size: number; mediaType: string }[];
}

export interface VerifyOptions {
  /** Blobs read and hashed in parallel (default 8). */
  concurrency?: number;
  /** Only these repositories (default: every repository in the catalog). */
  repositories?: readonly string[];
  onProgress?: (event: { checkedBlobs: number; checkedBytes: number }) => void;
}

type Check = { status: 'ok'; manifest?: Manifest } | { status: VerifyProblemKind; detail: string };

/** A descriptor with a malformed digest or size is reported (corrupt) and skipped; the walk goes on. */
function wellFormed(d: { digest: unknown; size: unknown }, report: (blob: string, check: Check) => void): boolean {
  if (typeof d.digest === 'string' && isDigest(d.digest) && Number.isSafeInteger(d.size) && (d.size as number) >= 0) return true;
  const shown = JSON.stringify(d.digest ?? null).slice(0, 100);
  report(String(d.digest).slice(0, 100), {
    status: 'corrupt',
    detail: `malformed descriptor: digest ${shown}, size ${JSON.stringify(d.size ?? null)}`,
  });
  return false;
}

export async function verifyStore(store: BackupStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const objects = storeObjects(store);
  // Only the reads are limited; the tree walk itself only waits.
  const limit = createLimiter(options.concurrency ?? 8);
  const checks = new Map<string, Promise<Check>>();
  let checkedBlobs = 0;
  let checkedBytes = 0;
  const counted = (size: number) => {
    checkedBlobs++;
    checkedBytes += size;
    options.onProgress?.({ checkedBlobs, checkedBytes });
  };

  const checkManifest = (d: { digest: string; size: number; mediaType?: string }): Promise<Check> => {
    let check = checks.get(d.digest);
    if (!check) {
      check = limit(async (): Promise<Check> => {
        const read = await readStoredManifest(objects, d);
        if (read.ok) {
          counted(read.manifest.bytes.byteLength);
          return { status: 'ok', manifest: read.manifest };
        }
        if (read.problem !== 'corrupt') {
          const detail =
            read.problem === 'missing'
              ? `manifest ${blobKey(d.digest)} is not in the store`
              : `reading ${store.description}/${blobKey(d.digest)}: ${errorText(read.error)}`;
          return { status: read.problem, detail };
        }
        counted(read.size);
        const detail =
          read.error instanceof DigestMismatchError
            ? `manifest ${errorText(read.error)}`
            : `manifest cannot be parsed: ${errorText(read.error)}`;
        return { status: 'corrupt', detail };
      });
      checks.set(d.digest, check);
    }
    return check;
  };

  const checkBlob = (d: Descriptor): Promise<Check> => checkBlobAt(blobKey(d.digest), d, 'blob');

  /** Hashes the object at `key` against a digest and size: a blob, or a docker-archive tar. */
  function checkBlobAt(key: string, d: { digest: string; size: number }, what: 'blob' | 'archive'): Promise<Check> {
    const id = what === 'blob' ? d.digest : `${key}@${d.digest}`;
    let check = checks.get(id);
    if (!check) {
      check = limit(async (): Promise<Check> => {
        const content = new ContentHash();
        try {
          const stream = await objects.get(key);
          for await (const chunk of stream) content.update(chunk as Buffer);
        } catch (error) {
          if (error instanceof NotFoundError) return { status: 'missing', detail: `${key} is not in the store` };
          return { status: 'unreadable', detail: `reading ${store.description}/${key}: ${errorText(error)}` };
        }
        counted(content.size);
        const digest = content.digest();
        if (content.size !== d.size) return { status: 'corrupt', detail: `${what} is ${content.size} bytes, expected ${d.size}` };
        if (digest !== d.digest) return { status: 'corrupt', detail: `content hashes to ${digest}` };
        return { status: 'ok' };
      });
      checks.set(id, check);
    }
    return check;
  }

  const problems: VerifyProblem[] = [];
  const external = new Map<string, { digest: string; size: number; mediaType: string }>();

  const verifyImage = async (record: CatalogRecord): Promise<void> => {
    const where = { repository: record.repository, ...(record.tag !== undefined ? { tag: record.tag } : {}), digest: record.digest };
    const seen = new Set<string>();
    const report = (blob: string, check: Check) => {
      if (check.status !== 'ok') problems.push({ ...where, blob, problem: check.status, detail: check.detail });
    };
    const visit = async (d: { digest: string; size: number; mediaType?: string }): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      if (!wellFormed(d, report)) return;
      const check = await checkManifest(d);
      report(d.digest, check);
      if (check.status !== 'ok' || !check.manifest) return;
      for (const f of foreignLayersOf(check.manifest))
        if (wellFormed(f, report)) external.set(f.digest, { digest: f.digest, size: f.size, mediaType: f.mediaType });
      const blobs = blobsOf(check.manifest).filter((b) => !seen.has(b.digest));
      for (const b of blobs) seen.add(b.digest);

      await Promise.all([
        ...childManifests(check.manifest).map(visit),
        ...blobs.filter((b) => wellFormed(b, report)).map(async (b) => report(b.digest, await checkBlob(b))),
      ]);
    };
    await visit({ digest: record.digest, size: record.manifestSize, mediaType: record.mediaType });
  };

  const repositories = options.repositories ?? (await store.listRepositories());
  let checkedImages = 0;
  for (const repository of repositories) {
    const keys = await store.catalogKeys(repository);
    // docker-archive records, by archive key: only the latest record of a key is checked, because a
    // tag's tar is replaced when the tag changes (older records of that key are superseded, not broken).
    const archives = new Map<string, { catalogKey: string; record: CatalogRecord }>();
    await mapLimited(keys, 4 * (options.concurrency ?? 8), async (key) => {
      let record: CatalogRecord;
      try {
        record = await store.readRecord(key.key);
      } catch (error) {
        problems.push({
          repository,
          ...(key.kind === 'tag' ? { tag: key.tag } : {}),
          digest: key.digest,
          blob: key.key,
          // Only a record that was read and is wrong is corrupt; a failed read says nothing about it.
          problem: error instanceof NotFoundError ? 'missing' : error instanceof InvalidRecordError ? 'corrupt' : 'unreadable',
          detail: `catalog record: ${errorText(error)}`,
        });
        return;
      }
      checkedImages++;
      if (record.archive && isArchiveRecord(record)) {
        const seen = archives.get(record.archive.key);
        if (!seen || key.key > seen.catalogKey) archives.set(record.archive.key, { catalogKey: key.key, record });
        return;
      }
      await verifyImage(record);
    });
    await Promise.all(
      [...archives.values()].map(async ({ record }) => {
        const archive = record.archive!;
        const check = await checkBlobAt(archive.key, { digest: archive.sha256, size: archive.size }, 'archive');
        if (check.status !== 'ok') {
          problems.push({
            repository,
            ...(record.tag !== undefined ? { tag: record.tag } : {}),
            digest: record.digest,
            blob: archive.key,
            problem: check.status,
            detail: check.detail,
          });
        }
      }),
    );
  }
  problems.sort(
    (a, b) =>
      a.repository.localeCompare(b.repository) ||
      (a.tag ?? '').localeCompare(b.tag ?? '') ||
      a.digest.localeCompare(b.digest) ||
      a.blob.localeCompare(b.blob),
  );
  const externalLayers = [...external.values()].sort((a, b) => a.digest.localeCompare(b.digest));
  return { checkedImages, checkedBlobs, checkedBytes, problems, externalLayers };
}
