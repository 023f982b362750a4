// The catalog at scale, against a real registry (behind a counting proxy) and both store backends
// (moto S3 with an SDK request counter, a directory with a counting wrapper): the request budget of
// an unchanged and a new image, overlapping backups, and tags deleted at the source.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../core/engine/backup.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { readCatalogIndex } from '../core/store/catalog-index.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { createS3Client, S3ObjectStore } from '../core/store/s3.ts';
import { countingObjectStore, countSdkRequests, startCountingProxy, type Counter, type CountingProxy } from './harness/counting.ts';
import { tempDir } from './harness/process.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { pushSynthetic, pushSyntheticOrg } from './harness/synthetic.ts';

const BUCKET = 'catalog-scale';
const { registry } = useServices({ moto: motoService({ awsEnv: true, buckets: [BUCKET] }), registry: registryService() });
let proxy: CountingProxy;

beforeAll(async () => {
  proxy = await startCountingProxy(registry.host);
});

afterAll(async () => {
  await proxy?.stop();
});

let prefixes = 0;
const backends: { name: string; make(): Promise<{ objects: ObjectStore; counter: Counter }> }[] = [
  {
    name: 'filesystem',
    make: async () => {
      const { store, counter } = countingObjectStore(new FileSystemObjectStore(join(await tempDir('catalog'), 'root')));
      return { objects: store, counter };
    },
  },
  {
    name: 's3',
    make: async () => {
      const client = createS3Client();
      const counter = countSdkRequests(client);
      return { objects: new S3ObjectStore({ bucket: BUCKET, prefix: `p${++prefixes}`, client }), counter };
    },
  },
];

const source = () => new RegistryEndpoint(proxy.url, { insecure: true });

describe.each(backends)('catalog at scale: $name', (backend) => {
  it('an unchanged image costs no manifest GET, one registry HEAD and at most 0.05 store requests; a new image HEADs each object once', async () => {
    const org = `budget-${backend.name}`;
    const pushed = await pushSyntheticOrg(registry, { repositories: 2, tagsPerRepository: 40, prefix: org });
    const { objects, counter } = await backend.make();
    const store = new BackupStore(objects);
    const filters = { repositories: [`${org}/*`] };

    const first = await runBackup({ source: source(), store, filters });
    expect(first.results.filter((r) => r.status === 'copied')).toHaveLength(80);

    counter.reset();
    proxy.reset();
    const second = await runBackup({ source: source(), store, filters });
    expect(second.results.map((r) => r.status)).toEqual(Array(80).fill('unchanged'));
    expect(second.results.map((r) => r.digest).sort()).toEqual(pushed.map((p) => p.digest).sort());
    expect(proxy.counts['GET manifest'] ?? 0).toBe(0);
    expect(proxy.counts['HEAD manifest']).toBe(80);
    expect(counter.total() / 80).toBeLessThanOrEqual(0.05);
    expect(counter.counts.GetObject ?? 0).toBe(0);
    expect(counter.counts.HeadObject ?? 0).toBe(0);

    // One changed tag and one new one: each stored object is HEADed at most once.
    await pushSynthetic(registry, `${org}/repo-0000`, 't0', 'changed');
    await pushSynthetic(registry, `${org}/repo-0001`, 'new');
    counter.reset();
    proxy.reset();
    const third = await runBackup({ source: source(), store, filters });
    expect(
      third.results
        .filter((r) => r.status === 'copied')
        .map((r) => `${r.repository}:${r.tag}`)
        .sort(),
    ).toEqual([`${org}/repo-0000:t0`, `${org}/repo-0001:new`]);
    const repeated = Object.entries(counter.keys).filter(([name, n]) => name.startsWith('HeadObject') && n > 1);
    expect(repeated).toEqual([]);
    expect(proxy.counts['GET manifest']).toBe(2);
  });

  it('overlapping backups of the same tags never lose an entry, and a value recorded twice reads as one', async () => {
    const org = `overlap-${backend.name}`;
    await pushSyntheticOrg(registry, { repositories: 1, tagsPerRepository: 12, prefix: org });
    const { objects } = await backend.make();
    const filters = { repositories: [`${org}/*`] };
    const [a, b] = await Promise.all([
      runBackup({ source: source(), store: new BackupStore(objects, { runId: 'a' }), filters }),
      runBackup({ source: source(), store: new BackupStore(objects, { runId: 'b' }), filters }),
    ]);
    expect(a.results.filter((r) => r.status === 'failed')).toEqual([]);
    expect(b.results.filter((r) => r.status === 'failed')).toEqual([]);
    const store = new BackupStore(objects);
    const listed = await store.repository(`${org}/repo-0000`).listImages();
    expect(listed.map((l) => l.tag).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `t${i}`).sort());
    const index = await readCatalogIndex(objects, `${org}/repo-0000`);
    for (const entries of index.tags.values()) expect(entries).toHaveLength(1);
    const history = await store.history(`${org}/repo-0000`);
    // Both runs may have written a record for a tag; the index reads the duplicates as one value.
    expect(history.tags.every((t) => t.records.every((r) => r.digest === t.records[0]!.digest))).toBe(true);
  });

  it('a tag deleted at the source is recorded once with its time, reported, not current, and still restorable as of before', async () => {
    const org = `deleted-${backend.name}`;
    const repository = `${org}/repo-0000`;
    const [keep, gone] = await Promise.all([pushSynthetic(registry, repository, 'keep'), pushSynthetic(registry, repository, 'gone')]);
    const { objects, counter } = await backend.make();
    const filters = { repositories: [`${org}/*`] };
    await runBackup({ source: source(), store: new BackupStore(objects), filters });
    const before = new Date();
    await new Promise((resolve) => setTimeout(resolve, 5));

    const res = await fetch(`http://${registry.host}/v2/${repository}/manifests/${gone.digest}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    const run = await runBackup({ source: source(), store: new BackupStore(objects), filters });
    expect(run.deleted).toEqual([{ repository, tag: 'gone', lastDigest: gone.digest, deletedAt: expect.any(String) }]);
    expect(Date.parse(run.deleted[0]!.deletedAt)).toBeGreaterThan(before.getTime());

    // Recorded once: the next run neither reports it again nor reads anything for it.
    counter.reset();
    const again = await runBackup({ source: source(), store: new BackupStore(objects), filters });
    expect(again.deleted).toEqual([]);
    expect(counter.counts.GetObject ?? 0).toBe(0);
    expect(counter.counts.PutObject ?? 0).toBe(0);

    const store = new BackupStore(objects);
    expect((await store.repository(repository).listImages()).map((l) => l.tag)).toEqual(['keep']);
    const past = store.atTime(before);
    expect((await past.repository(repository).listImages()).map((l) => [l.tag, l.digest])).toEqual([
      ['gone', gone.digest],
      ['keep', keep.digest],
    ]);
    expect((await past.repository(repository).getManifest({ tag: 'gone' })).descriptor.digest).toBe(gone.digest);

    // Pushed again: current again, with a new record after the tombstone.
    await pushSynthetic(registry, repository, 'gone');
    const back = await runBackup({ source: source(), store: new BackupStore(objects), filters });
    expect(back.results.find((r) => r.tag === 'gone')?.status).not.toBe('failed');
    expect((await new BackupStore(objects).repository(repository).listImages()).map((l) => l.tag)).toEqual(['gone', 'keep']);
  });
});
