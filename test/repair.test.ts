// `verify --repair`: a store damaged after the backup (a layer deleted, a layer and a manifest
// overwritten with other bytes of the same size) is repaired from the source registry, verify is
// then clean, and a restore is digest-exact; an object that is fine is left untouched; an image whose
// blob the source no longer has is reported by image, with exit 1. Directory store and S3 (moto).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RepairReport } from '../core/engine/repair.ts';
import type { VerifyReport } from '../core/store/verify.ts';
import { blobKey } from '../core/store/layout.ts';
import { openStore } from '../core/store/url.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { tempDir } from './harness/process.ts';

const BUCKET = 'repair';

const { source, target, moto } = useServices({
  source: registryService(),
  target: registryService(),
  moto: motoService({ awsEnv: true, buckets: [BUCKET] }),
});
let app: PushedImage; // rp/app:a: one layer deleted, one corrupted
let web: PushedImage; // rp/web:w: its manifest corrupted
let intact: PushedImage; // rp/intact:i: untouched, must not be rewritten
let gone: PushedImage; // rp/gone:g: a layer deleted from the store and from the source

beforeAll(async () => {
  app = await pushImage(source, { repository: 'rp/app', tag: 'a', layerSizes: [40_000, 50_000], variant: 'repair-app' });
  web = await pushImage(source, { repository: 'rp/web', tag: 'w', variant: 'repair-web' });
  intact = await pushImage(source, { repository: 'rp/intact', tag: 'i', variant: 'repair-intact' });
  gone = await pushImage(source, { repository: 'rp/gone', tag: 'g', variant: 'repair-gone' });
}, 180_000);

afterAll(async () => {
  await cleanupFixtures();
});

const layers = (image: PushedImage) => image.blobs.filter((b) => b.digest !== image.configDigest);

async function backup(store: string, repositories: string[]): Promise<void> {
  const r = await runCliJson(['backup', '--registry', source.url, '--to', store, '--repositories', ...repositories], { env: moto.env });
  expect(r.exitCode, r.stderr).toBe(0);
}

/** Replaces a stored object with other bytes of the same size (what bit rot or a bad copy leaves). */
async function corrupt(store: string, digest: string, size: number): Promise<void> {
  await openStore(store).put(blobKey(digest), randomBytes(size));
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('verify --repair', () => {
  it.each([
    ['directory', async () => tempDir('repair-store')],
    ['s3', async () => `s3://${BUCKET}/store`],
  ])(
    '%s store: a deleted layer, a corrupt layer and a corrupt manifest are copied again; verify is clean; restore is exact',
    async (kind, makeStore) => {
      const store = await makeStore();
      await backup(store, ['rp/app', 'rp/web', 'rp/intact']);
      const objects = openStore(store);
      const [deleted, corrupted] = layers(app);
      await objects.delete(blobKey(deleted!.digest));
      await corrupt(store, corrupted!.digest, corrupted!.size);
      await corrupt(store, web.digest, web.size);
      const untouched = await objects.head(blobKey(layers(intact)[0]!.digest));

      const before = await runCliJson<VerifyReport>(['verify', '--from', store], { env: moto.env });
      expect(before.exitCode).toBe(1);
      expect(before.json.problems.map((p) => [p.repository, p.blob, p.problem]).sort()).toEqual(
        [
          ['rp/app', deleted!.digest, 'missing'],
          ['rp/app', corrupted!.digest, 'corrupt'],
          ['rp/web', web.digest, 'corrupt'],
        ].sort(),
      );

      const repair = await runCliJson<RepairReport>(['verify', '--repair', '--registry', source.url, '--from', store], { env: moto.env });
      expect(repair.exitCode, repair.stderr).toBe(0);
      expect(repair.json.before.problems).toHaveLength(3);
      expect(repair.json.replaced).toEqual([deleted!.digest, corrupted!.digest, web.digest].sort());
      expect(repair.json.unrepaired).toEqual([]);
      expect(repair.json.after.problems).toEqual([]);
      // A good object is never rewritten.
      expect((await objects.head(blobKey(layers(intact)[0]!.digest)))?.lastModified).toEqual(untouched?.lastModified);

      const after = await runCli(['verify', '--from', store], { env: moto.env });
      expect(after.exitCode, after.stdout).toBe(0);

      const prefix = `restored-${kind}/`;
      const restore = await runCliJson(
        ['restore', '--from', store, '--registry', target.url, '--repository-prefix', prefix, '--repositories', 'rp/app', 'rp/web'],
        { env: moto.env },
      );
      expect(restore.exitCode, restore.stderr).toBe(0);
      for (const image of [app, web]) {
        const restored = await inspectRaw(`${target.host}/${prefix}${image.repository}@${image.digest}`);
        expect(restored.digest).toBe(image.digest);
        for (const blob of image.blobs) {
          const res = await fetch(`${target.url}/v2/${prefix}${image.repository}/blobs/${blob.digest}`);
          expect(res.status).toBe(200);
          expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(blob.digest);
        }
      }
    },
    240_000,
  );

  it('a blob the source no longer has is reported by image, exit 1, and the rest is still repaired', async () => {
    const store = await tempDir('repair-gone');
    await backup(store, ['rp/app', 'rp/gone']);
    const objects = openStore(store);
    const lost = layers(gone)[0]!;
    const [appLayer] = layers(app);
    await objects.delete(blobKey(lost.digest));
    await objects.delete(blobKey(appLayer!.digest));
    const deleted = await fetch(`${source.url}/v2/${gone.repository}/blobs/${lost.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);

    const repair = await runCliJson<RepairReport>(['verify', '--repair', '--registry', source.url, '--from', store], { env: moto.env });
    expect(repair.exitCode).toBe(1);
    expect(repair.json.replaced).toEqual([appLayer!.digest]);
    expect(repair.json.unrepaired).toHaveLength(1);
    expect(repair.json.unrepaired[0]).toMatchObject({ repository: 'rp/gone', tags: ['g'], digest: gone.digest, damaged: [lost.digest] });
    expect(repair.json.unrepaired[0]!.error).toContain(lost.digest);
    expect(repair.json.after.problems.map((p) => [p.repository, p.blob, p.problem])).toEqual([['rp/gone', lost.digest, 'missing']]);

    const text = await runCli(['verify', '--repair', '--registry', source.url, '--from', store], { env: moto.env });
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toContain(`not repaired: rp/gone:g ${gone.digest}`);
  }, 240_000);
});
