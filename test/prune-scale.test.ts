// Prune at scale: what it reads does not grow with the number of delete batches (three listings of
// the store per run), marking reads each distinct manifest once and no oci tag record, and a backup
// that records or stores an image referencing old garbage while prune is marking keeps that garbage.
// Stores are written directly (test/harness/synthetic-store.ts), no registry.
import { cp } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../core/model/digest.ts';
import { blobKey, compactTime, tagRecordKey } from '../core/store/layout.ts';
import { readJson, writeJson, type ObjectStore } from '../core/store/object-store.ts';
import { pruneStore } from '../core/store/prune.ts';
import { openStore } from '../core/store/url.ts';
import { countingObjectStore } from './harness/counting.ts';
import { tempDir } from './harness/process.ts';
import { writeSyntheticStore, type SyntheticValue } from './harness/synthetic-store.ts';

const IMAGES = 60;

async function syntheticDir(name: string, images = IMAGES): Promise<{ dir: string; values: SyntheticValue[] }> {
  const dir = await tempDir(name);
  const values = await writeSyntheticStore(openStore(dir), { images, tagsPerRepository: 6 });
  return { dir, values };
}

async function present(objects: ObjectStore, digests: string[]): Promise<boolean[]> {
  return Promise.all(digests.map(async (d) => (await objects.head(blobKey(d))) !== undefined));
}

describe('prune reads per run, not per delete batch', () => {
  it('three listings whatever the batch size; one GET per kept manifest and per small candidate; no record read, no HEAD', async () => {
    const { dir, values } = await syntheticDir('prune-scale-reads');
    const copy = await tempDir('prune-scale-reads-copy');
    await cp(dir, copy, { recursive: true });
    const runs = [];
    for (const [where, batchSize] of [
      [dir, 1000],
      [copy, 7],
    ] as const) {
      const { store, counter } = countingObjectStore(openStore(where));
      const report = await pruneStore(store, { keepLast: 1, graceMs: 0, batchSize });
      runs.push({ report, counts: { ...counter.counts }, keys: Object.keys(counter.keys) });
    }
    const dropped = values.filter((v) => v.time.getTime() === Math.min(...values.map((x) => x.time.getTime())));
    const kept = values.filter((v) => !dropped.includes(v));
    for (const { report, counts, keys } of runs) {
      expect(report).toMatchObject({ sweep: 'done', problems: [], conflicts: [], failed: [] });
      expect(report.records).toEqual({ total: 2 * IMAGES, kept: IMAGES, dropped: IMAGES });
      expect(report.blobs.deleted).toBe(3 * IMAGES);
      // 16 blob shards + 36 catalog shards, listed at the start, before the first delete and after the last.
      expect(counts.ListObjectsV2).toBe(3 * (16 + 36));
      expect(counts.GetObject).toBe(kept.length + 3 * dropped.length);
      expect(counts.HeadObject ?? 0).toBe(0);
      expect(keys.filter((k) => k.startsWith('GetObject catalog/'))).toEqual([]);
    }
    const objects = openStore(copy);
    expect(
      await present(
        objects,
        kept.flatMap((v) => v.blobs),
      ),
    ).not.toContain(false);
    expect(
      await present(
        objects,
        dropped.flatMap((v) => v.blobs),
      ),
    ).not.toContain(true);
  });
});

describe('a backup writing while prune marks', () => {
  /** The store, with `during` run once at prune's first manifest read (marking has begun, the listing is done). */
  const duringMarking = (objects: ObjectStore, during: () => Promise<void>): ObjectStore => {
    let fired = false;
    return new Proxy(objects, {
      get: (t, p) => {
        const v = Reflect.get(t, p, t) as unknown;
        if (p === 'get')
          return async (key: string) => {
            if (!fired && key.startsWith('blobs/')) {
              fired = true;
              await during();
            }
            return t.get(key);
          };
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  };

  it('a record of an old value written meanwhile (a rollback) keeps that image whole; no conflict', async () => {
    const { dir, values } = await syntheticDir('prune-scale-rollback', 12);
    const objects = openStore(dir);
    const old = values[0]!; // r0:t0's first value, dropped by keep-last 1 (its record is gone before marking starts)
    const body = await readJson<Record<string, unknown>>(objects, tagRecordKey(old.repository, old.tag, compactTime(old.time), old.digest));
    const report = await pruneStore(
      duringMarking(objects, async () => {
        const now = new Date();
        await writeJson(objects, tagRecordKey(old.repository, 'rollback', compactTime(now), old.digest), {
          ...body,
          tag: 'rollback',
          backedUpAt: now.toISOString(),
        });
      }),
      { keepLast: 1, graceMs: 0 },
    );
    expect(report).toMatchObject({ sweep: 'done', problems: [], conflicts: [], failed: [] });
    expect(report.droppedRecords.map((r) => r.digest)).toContain(old.digest);
    expect(await present(objects, old.blobs)).toEqual([true, true, true]);
    expect(report.blobs.deleted).toBe(3 * 11);
  });

  it('a new manifest stored meanwhile that re-uses an old layer (not yet recorded) keeps that layer', async () => {
    const { dir, values } = await syntheticDir('prune-scale-fresh', 12);
    const objects = openStore(dir);
    const old = values[0]!;
    const [, oldConfig, oldLayer] = old.blobs as [string, string, string];
    const head = async (d: string) => (await objects.head(blobKey(d)))!.size;
    let manifest = Buffer.alloc(0);
    const report = await pruneStore(
      duringMarking(objects, async () => {
        manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: oldConfig, size: await head(oldConfig) },
            layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: oldLayer, size: await head(oldLayer) }],
          }),
        );
        await objects.put(blobKey(sha256Digest(manifest)), manifest);
      }),
      { keepLast: 1, graceMs: 0 },
    );
    expect(report).toMatchObject({ sweep: 'done', problems: [], conflicts: [], failed: [] });
    expect(await present(objects, [old.digest, oldConfig, oldLayer])).toEqual([false, true, true]);
    expect(report.blobs.deleted).toBe(3 * 11 + 1);
  });
});

describe('records whose image is not in blobs/ (docker-archive)', () => {
  it('a docker-archive key (its digest stored as oci or not), or an older key whose body is a docker-archive record, does not stop the sweep', async () => {
    const { dir, values } = await syntheticDir('prune-scale-archive', 6);
    const objects = openStore(dir);
    const time = compactTime(new Date('2026-02-01T00:00:00Z'));
    const archive = {
      repository: 'syn/r0',
      tag: 'tar',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      manifestSize: 1,
      imageBytes: 1,
      backedUpAt: '2026-02-01T00:00:00.000Z',
      format: 'docker-archive',
      archive: {
        key: 'x/syn/r0/tar.tar',
        sha256: `sha256:${'1'.repeat(64)}`,
        size: 1,
        compression: 'none',
        platform: 'linux/amd64',
        configDigest: `sha256:${'2'.repeat(64)}`,
      },
    };
    const absent = `sha256:${'3'.repeat(64)}`;
    // A tar of an image not stored as oci; a tar of a current oci value; an older key without the format suffix.
    await writeJson(objects, tagRecordKey('syn/r0', 'tar', time, absent, 'docker-archive'), { ...archive, digest: absent });
    const shared = values.at(-1)!;
    await writeJson(objects, tagRecordKey('syn/r0', 'tar2', time, shared.digest, 'docker-archive'), {
      ...archive,
      tag: 'tar2',
      digest: shared.digest,
    });
    const legacy = `sha256:${'4'.repeat(64)}`;
    await writeJson(objects, tagRecordKey('syn/r0', 'tar3', time, legacy), { ...archive, tag: 'tar3', digest: legacy });
    const report = await pruneStore(objects, { keepLast: 1, graceMs: 0 });
    expect(report).toMatchObject({ sweep: 'done', problems: [], conflicts: [], failed: [] });
    expect(report.blobs.deleted).toBe(3 * 6);
    expect(await present(objects, shared.blobs)).toEqual([true, true, true]);
  });

  it('an oci record whose manifest is missing is a problem that stops the sweep', async () => {
    const { dir, values } = await syntheticDir('prune-scale-missing', 6);
    const objects = openStore(dir);
    const current = values.at(-1)!;
    await objects.delete(blobKey(current.digest));
    const report = await pruneStore(objects, { keepLast: 1, graceMs: 0 });
    expect(report.sweep).toBe('skipped');
    expect(report.problems.map((p) => [p.digest, p.problem])).toEqual([[current.digest, 'missing']]);
    expect(report.blobs.deleted).toBe(0);
  });
});
