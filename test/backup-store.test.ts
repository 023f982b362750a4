// BackupStore (the content-addressed image layout and catalog) and verifyStore, against moto's S3 and
// a temporary directory, with images built by hand.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DigestMismatchError } from '../core/model/digest.ts';
import { manifestFromBytes, MediaType, type Manifest } from '../core/model/manifest.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { IncompleteImageError, ManifestNotFoundError, ReadOnlyStoreError } from '../core/store/store-errors.ts';
import { InvalidReferenceError } from '../core/model/reference.ts';
import { readAll, readJson } from '../core/store/object-store.ts';
import { verifyStore } from '../core/store/verify.ts';
import { blob, type Blob } from './harness/oci-content.ts';
import { backends, keys, useStoreBackends } from './harness/store-backends.ts';

useStoreBackends();

// ---- Images built by hand -------------------------------------------------------------------------

function image(layers: Blob[], arch = 'amd64'): { manifest: Manifest; blobs: Blob[] } {
  const config = blob(
    Buffer.from(
      JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }),
    ),
    MediaType.OciImageConfig,
  );
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: config.descriptor,
      layers: layers.map((l) => l.descriptor),
    }),
  );
  return { manifest: manifestFromBytes(bytes), blobs: [config, ...layers] };
}

function index(children: { manifest: Manifest; platform: { os: string; architecture: string; variant?: string } }[]): Manifest {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: children.map((c) => ({ ...c.manifest.descriptor, platform: c.platform })),
    }),
  );
  return manifestFromBytes(bytes);
}

function clock(start = '2026-01-01T00:00:00.000Z') {
  let now = new Date(start);
  return {
    now: () => now,
    set: (iso: string) => (now = new Date(iso)),
  };
}

/** Stores an image's blobs, then its manifest; `ref` undefined stores it the way index children are stored. */
async function putImage(
  store: BackupStore,
  repository: string,
  img: { manifest: Manifest; blobs: Blob[] },
  ref?: string | { digest: string },
) {
  const repo = store.repository(repository);
  for (const b of img.blobs) await repo.putBlob(b.descriptor, Readable.from([b.bytes]));
  await repo.putManifest(img.manifest, typeof ref === 'string' ? { tag: ref } : ref);
}

const bytesOf = (img: { manifest: Manifest; blobs: Blob[] }) =>
  img.manifest.descriptor.size + img.blobs.reduce((n, b) => n + b.descriptor.size, 0);

describe.each(backends)('BackupStore: $name', (backend) => {
  it('stores blobs and manifests content-addressed and writes catalog records', async () => {
    const objects = await backend.make();
    const time = clock('2026-11-26T10:25:33.123Z');
    const store = new BackupStore(objects, { runId: 'run-1', now: time.now });
    const img = image([blob(), blob()]);
    await putImage(store, 'team/app', img, 'v1');

    const repo = store.repository('team/app');
    expect(await repo.hasManifest(img.manifest.descriptor)).toBe(true);
    for (const b of img.blobs) expect(await repo.hasBlob(b.descriptor)).toBe(true);
    expect(await repo.hasBlob(blob().descriptor)).toBe(false);

    const hex = img.manifest.descriptor.digest.slice(7);
    expect(await keys(objects, 'catalog/')).toEqual([`catalog/team/app/_tags/v1/20261126T102533123Z_${hex}.json`]);
    expect((await keys(objects, 'blobs/sha256/')).sort()).toEqual(
      [img.manifest, ...img.blobs].map((x) => `blobs/sha256/${x.descriptor.digest.slice(7)}`).sort(),
    );
    const record = await readJson(objects, `catalog/team/app/_tags/v1/20261126T102533123Z_${hex}.json`);
    expect(record).toEqual({
      repository: 'team/app',
      tag: 'v1',
      digest: img.manifest.descriptor.digest,
      mediaType: MediaType.OciManifest,
      manifestSize: img.manifest.descriptor.size,
      imageBytes: bytesOf(img),
      backedUpAt: '2026-11-26T10:25:33.123Z',
      runId: 'run-1',
    });

    expect(await store.listRepositories()).toEqual(['team/app']);
    expect(await repo.listImages()).toEqual([
      { tag: 'v1', digest: img.manifest.descriptor.digest, sizeBytes: bytesOf(img), time: '2026-11-26T10:25:33.123Z' },
    ]);
    expect((await repo.getManifest({ tag: 'v1' })).bytes).toEqual(img.manifest.bytes);
    expect((await repo.getManifest({ digest: img.manifest.descriptor.digest })).descriptor).toEqual(img.manifest.descriptor);
    expect(await readAll(await repo.openBlob(img.blobs[1]!.descriptor))).toEqual(img.blobs[1]!.bytes);
    await expect(repo.getManifest({ tag: 'v2' })).rejects.toBeInstanceOf(ManifestNotFoundError);

    // The same image under another repository and tag stores no new blob, only a record.
    const blobCount = (await keys(objects, 'blobs/')).length;
    await putImage(store, 'other', img, 'latest');
    expect((await keys(objects, 'blobs/')).length).toBe(blobCount);
    expect(await store.listRepositories()).toEqual(['other', 'team/app']);
    expect(await store.blobUsage()).toEqual({ blobs: blobCount, bytes: bytesOf(img) });
    expect(await store.describe([{ repository: 'other', tag: 'latest' }])).toMatchObject([
      { repository: 'other', tag: 'latest', imageBytes: bytesOf(img) },
    ]);
  });

  it('keeps one record per tag value; asOf resolves the value at that time', async () => {
    const objects = await backend.make();
    const time = clock('2026-03-01T00:00:00.000Z');
    const store = new BackupStore(objects, { now: time.now });
    const v1 = image([blob()]);
    const v2 = image([blob()]);
    await putImage(store, 'app', v1, 'latest');
    time.set('2026-03-01T00:00:10.000Z');
    await putImage(store, 'app', v1, 'latest'); // unchanged: no second record
    expect(await keys(objects, 'catalog/app/_tags/latest/')).toHaveLength(1);
    time.set('2026-03-02T00:00:00.000Z');
    await putImage(store, 'app', v2, 'latest'); // moved: a second record
    const recordKeys = await keys(objects, 'catalog/app/_tags/latest/');
    expect(recordKeys).toEqual([
      `catalog/app/_tags/latest/20260301T000000000Z_${v1.manifest.descriptor.digest.slice(7)}.json`,
      `catalog/app/_tags/latest/20260302T000000000Z_${v2.manifest.descriptor.digest.slice(7)}.json`,
    ]);

    expect((await store.repository('app').listImages()).map((i) => i.digest)).toEqual([v2.manifest.descriptor.digest]);
    const before = store.atTime('2026-03-01T12:00:00Z');
    expect((await before.repository('app').listImages()).map((i) => i.digest)).toEqual([v1.manifest.descriptor.digest]);
    expect((await before.repository('app').getManifest({ tag: 'latest' })).descriptor.digest).toBe(v1.manifest.descriptor.digest);
    const exact = new BackupStore(objects, { asOf: '2026-03-02T00:00:00.000Z' });
    expect((await exact.repository('app').listImages()).map((i) => i.digest)).toEqual([v2.manifest.descriptor.digest]);
    const beforeAll = store.atTime('2026-02-01T00:00:00Z');
    expect(await beforeAll.repository('app').listImages()).toEqual([]);
    expect(await beforeAll.listRepositories()).toEqual([]);
    await expect(beforeAll.repository('app').getManifest({ tag: 'latest' })).rejects.toBeInstanceOf(ManifestNotFoundError);
    await expect(before.repository('app').putManifest(v1.manifest, { tag: 'x' })).rejects.toBeInstanceOf(ReadOnlyStoreError);

    // Moving back writes a third record, and the history shows all three.
    time.set('2026-03-03T00:00:00.000Z');
    await putImage(store, 'app', v1, 'latest');
    const history = await store.history('app');
    expect(history.tags.map((t) => [t.tag, t.records.map((r) => r.digest)])).toEqual([
      ['latest', [v1.manifest.descriptor.digest, v2.manifest.descriptor.digest, v1.manifest.descriptor.digest]],
    ]);

    // A clock that steps back still orders the history.
    time.set('2026-01-01T00:00:00.000Z');
    await putImage(store, 'app', v2, 'latest');
    expect((await store.repository('app').listImages()).map((i) => i.digest)).toEqual([v2.manifest.descriptor.digest]);
  });

  it('refuses a manifest whose blobs are not all stored', async () => {
    const objects = await backend.make();
    const store = new BackupStore(objects);
    const img = image([blob(), blob()]);
    const repo = store.repository('app');
    for (const b of img.blobs.slice(0, 2)) await repo.putBlob(b.descriptor, Readable.from([b.bytes]));
    const error = await repo.putManifest(img.manifest, { tag: 'v1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompleteImageError);
    expect((error as IncompleteImageError).missing).toEqual([img.blobs[2]!.descriptor.digest]);
    expect(await repo.hasManifest(img.manifest.descriptor)).toBe(false);
    expect(await keys(objects, 'catalog/')).toEqual([]);

    // An index whose child manifest is missing is refused the same way.
    const idx = index([{ manifest: img.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);
    await expect(repo.putManifest(idx, { tag: 'multi' })).rejects.toBeInstanceOf(IncompleteImageError);
  });

  it('commits no blob when the body fails verification', async () => {
    const store = new BackupStore(await backend.make());
    const good = blob();
    const repo = store.repository('app');
    await expect(repo.putBlob(good.descriptor, Readable.from([randomBytes(good.descriptor.size)]))).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    expect(await repo.hasBlob(good.descriptor)).toBe(false);
    await repo.putBlob(good.descriptor, Readable.from([good.bytes]));
    await repo.putBlob(good.descriptor, Readable.from([good.bytes])); // already present: drained, not rewritten
    expect(await repo.hasBlob(good.descriptor)).toBe(true);
  });

  it('records an index with platforms and size, and lists untagged images but not index children', async () => {
    const objects = await backend.make();
    const store = new BackupStore(objects);
    const shared = blob();
    const amd = image([shared, blob()], 'amd64');
    const arm = image([shared, blob()], 'arm64');
    const repo = store.repository('multi');
    // What the copy engine does: children by digest (no tag), then the index with its tag.
    await putImage(store, 'multi', amd);
    await putImage(store, 'multi', arm);
    const idx = index([
      { manifest: amd.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { manifest: arm.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    await repo.putManifest(idx, { tag: 'v1' });
    const loose = image([blob()]);
    await putImage(store, 'multi', loose, { digest: loose.manifest.descriptor.digest }); // an untagged image backed up by digest

    const [record] = await store.describe([{ repository: 'multi', tag: 'v1' }]);
    expect(record).toMatchObject({
      mediaType: MediaType.OciIndex,
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      imageBytes: idx.descriptor.size + bytesOf(amd) + bytesOf(arm) - shared.descriptor.size,
    });
    const listing = await repo.listImages();
    expect(listing.map((l) => [l.tag, l.digest])).toEqual([
      ['v1', idx.descriptor.digest],
      [undefined, loose.manifest.descriptor.digest],
    ]);
    expect((await repo.getManifest({ digest: loose.manifest.descriptor.digest })).bytes).toEqual(loose.manifest.bytes);
  });

  it('refuses hostile repository names and tags', async () => {
    const store = new BackupStore(await backend.make());
    for (const name of ['../x', 'a/../../b', 'A', '_tags', 'a/_tags/b', '/abs', 'a//b', '']) {
      expect(() => store.repository(name), name).toThrow(InvalidReferenceError);
    }
    const img = image([]);
    for (const tag of ['../../x', 'a/b', '.hidden', '-x', '']) {
      await expect(store.repository('app').putManifest(img.manifest, { tag }), tag).rejects.toBeInstanceOf(InvalidReferenceError);
      await expect(store.repository('app').getManifest({ tag }), tag).rejects.toBeInstanceOf(InvalidReferenceError);
    }
  });

  it('verifyStore reports corrupt and missing blobs per image, hashing each blob once', async () => {
    const objects = await backend.make();
    const store = new BackupStore(objects);
    const shared = blob(randomBytes(3000));
    const a = image([shared, blob()]);
    const b = image([shared, blob()]);
    await putImage(store, 'app', a, 'a');
    await putImage(store, 'app', b, 'b');
    await putImage(store, 'other/app', a, 'same');

    const clean = await verifyStore(store);
    expect(clean.problems).toEqual([]);
    // 2 manifests + 2 configs + shared + 2 own layers, each once although `a` is referenced twice.
    expect(clean.checkedBlobs).toBe(7);
    expect(clean.checkedImages).toBe(3);
    const distinct = new Map([...a.blobs, ...b.blobs].map((x) => [x.descriptor.digest, x.descriptor.size]));
    expect(clean.checkedBytes).toBe(
      a.manifest.descriptor.size + b.manifest.descriptor.size + [...distinct.values()].reduce((n, s) => n + s, 0),
    );

    // Same size, different bytes: only hashing finds it.
    const flipped = Buffer.from(shared.bytes);
    flipped[100] = flipped[100]! ^ 0xff;
    await backend.tamper(objects, `blobs/sha256/${shared.descriptor.digest.slice(7)}`, flipped);
    const ownB = b.blobs[2]!;
    await objects.delete(`blobs/sha256/${ownB.descriptor.digest.slice(7)}`);

    const report = await verifyStore(store, { concurrency: 2 });
    expect(report.problems.map((p) => [p.repository, p.tag, p.blob, p.problem])).toEqual(
      [
        ['app', 'a', shared.descriptor.digest, 'corrupt'],
        ['app', 'b', ownB.descriptor.digest, 'missing'],
        ['app', 'b', shared.descriptor.digest, 'corrupt'],
        ['other/app', 'same', shared.descriptor.digest, 'corrupt'],
      ].sort((x, y) => `${x[0]} ${x[1]} ${x[2]}`.localeCompare(`${y[0]} ${y[1]} ${y[2]}`)),
    );
    const corrupt = report.problems.find((p) => p.problem === 'corrupt')!;
    expect(corrupt.digest).toBe(a.manifest.descriptor.digest);
    expect(corrupt.detail).toContain('hashes to sha256:');
    expect(report.checkedBlobs).toBe(6);
  });
});
