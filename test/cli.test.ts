// End-to-end: the real CLI against a real distribution registry, moto S3/ECR and a directory store.
// Restored digests are read back with skopeo, an independent client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateRepositoryCommand, DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { startRegistry } from './harness/registry.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { tempDir } from './harness/process.ts';
import { directoryBytes, runCli, runCliJson } from './harness/cli.ts';
import { startLyingProxy } from './harness/lying-proxy.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushArtifact, pushSignature } from './harness/fixture-artifacts.ts';
import { pushImage, pushManyLayerImage, pushMultiArchIndex, pushSharedBaseTags } from './harness/fixtures.ts';
import { inEcr } from './harness/ecr-images.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import type { RunReport } from '../schema/contract.ts';

const MiB = 1024 * 1024;
const { source, target, moto } = useServices({ source: registryService(), target: registryService(), moto: motoService() });
let images: PushedImage[];
let shared: PushedImage[];
const BUCKET = 'backups';

beforeAll(async () => {
  const s3 = moto.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const single = await pushImage(source, { repository: 'apps/single', tag: '1.0' });
  const multi = await pushMultiArchIndex(source, { repository: 'apps/multi', tag: 'v2' });
  const sharedBase = await pushSharedBaseTags(source, {
    repository: 'apps/shared',
    tags: ['a', 'b'],
    baseSize: 20 * MiB,
    uniqueSize: 256 * 1024,
  });
  shared = sharedBase.images;
  const artifact = await pushArtifact(source, { repository: 'apps/sbom', tag: 'sbom-1' });
  const signature = await pushSignature(source, { repository: 'apps/single', signedDigest: single.digest });
  const many = await pushManyLayerImage(source, { repository: 'apps/layers', tag: 'many', layers: 40 });
  images = [single, multi, ...shared, artifact, signature, many];
});

afterAll(async () => {
  await cleanupFixtures();
});

const env = () => moto.env;
const backupArgs = (store: string, registry = source.url) => ['backup', '--registry', registry, '--to', store];

async function expectRestored(prefix: string, image: PushedImage) {
  const restored = await inspectRaw(`${target.host}/${prefix}${image.repository}:${image.tag}`);
  expect(restored.digest, `${prefix}${image.repository}:${image.tag}`).toBe(image.digest);
}

describe.each([
  { name: 'directory', store: async () => tempDir('store') },
  { name: 's3', store: async () => `s3://${BUCKET}/round-trip` },
])('round trip through the $name store', ({ name, store: makeStore }) => {
  it('backs up every fixture and restores it with identical digests (index, artifact, signature tag, 40 layers)', async () => {
    const store = await makeStore();
    const backup = await runCliJson<RunReport>(backupArgs(store), { env: env() });
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.json.counts).toMatchObject({ images: images.length, copied: images.length, failed: 0 });

    const restore = await runCliJson<RunReport>(['restore', '--from', store, '--registry', target.url, '--repository-prefix', `${name}/`], {
      env: env(),
    });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.counts).toMatchObject({ images: images.length, copied: images.length, failed: 0 });
    for (const image of images) await expectRestored(`${name}/`, image);

    const verify = await runCliJson<{ problems: unknown[]; checkedBlobs: number }>(['verify', '--from', store], { env: env() });
    expect(verify.exitCode).toBe(0);
    expect(verify.json.problems).toEqual([]);
    expect(verify.json.checkedBlobs).toBeGreaterThan(40);

    const list = await runCliJson<Array<{ repository: string; tag?: string; digest: string; platforms?: string[] }>>(
      ['list', '--from', store],
      { env: env() },
    );
    for (const image of images) {
      expect(list.json).toContainEqual(expect.objectContaining({ repository: image.repository, tag: image.tag, digest: image.digest }));
    }
    expect(list.json.find((e) => e.repository === 'apps/multi')?.platforms).toEqual(['linux/amd64', 'linux/arm64']);
  });
});

describe('directory store behaviour', () => {
  let store: string;
  beforeAll(async () => {
    store = await tempDir('store');
  });

  it('stores a 20 MB base layer shared by two tags once', async () => {
    const result = await runCliJson<RunReport>([...backupArgs(store), '--repositories', 'apps/shared'], { env: env() });
    expect(result.exitCode, result.stderr).toBe(0);
    const expected = new Map<string, number>();
    for (const image of shared) for (const d of [...image.blobs, ...image.manifests]) expected.set(d.digest, d.size);
    expect(expected.size).toBe(7); // one base, two unique layers, two configs, two manifests
    let total = 0;
    for (const [digest, size] of expected) {
      const bytes = await readFile(join(store, 'blobs/sha256', digest.slice(7)));
      expect(bytes.length).toBe(size);
      total += bytes.length;
    }
    expect(await directoryBytes(join(store, 'blobs'))).toBe(total);
    expect(total).toBeLessThan(21 * MiB);
    expect(result.json.counts.bytesDeduplicated).toBeGreaterThanOrEqual(20 * MiB);
  });

  it('a second backup copies 0 blob bytes and reports every image unchanged', async () => {
    const result = await runCliJson<RunReport>([...backupArgs(store), '--repositories', 'apps/shared'], { env: env() });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.json.counts).toMatchObject({ images: 2, unchanged: 2, copied: 0, bytesCopied: 0 });
  });

  it('verify reports a blob altered on disk and restore refuses to push it', async () => {
    const corruptStore = await tempDir('store');
    const single = images[0]!;
    expect((await runCli([...backupArgs(corruptStore), '--repositories', 'apps/single'], { env: env() })).exitCode).toBe(0);
    const layer = single.blobs.find((b) => b.digest !== single.configDigest)!;
    const path = join(corruptStore, 'blobs/sha256', layer.digest.slice(7));
    const bytes = await readFile(path);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(path, bytes);

    const verify = await runCliJson<{ problems: Array<{ problem: string; blob: string; repository: string }> }>(
      ['verify', '--from', corruptStore],
      { env: env() },
    );
    expect(verify.exitCode).toBe(1);
    expect(verify.json.problems).toContainEqual(
      expect.objectContaining({ problem: 'corrupt', blob: layer.digest, repository: 'apps/single' }),
    );

    const restore = await runCliJson<RunReport>(
      ['restore', '--from', corruptStore, '--registry', target.url, '--repository-prefix', 'corrupt/', '--tags', '1.0'],
      { env: env() },
    );
    expect(restore.exitCode).toBe(1);
    expect(restore.json.failures[0]?.error).toMatch(/apps\/single:1\.0: .*digest mismatch/);
    await expect(inspectRaw(`${target.host}/corrupt/apps/single:1.0`)).rejects.toThrow();
  });

  it('a registry serving wrong bytes for a digest fails that image, stores nothing under the digest, and copies the rest', async () => {
    const lyingStore = await tempDir('store');
    const single = images[0]!;
    const layer = single.blobs.find((b) => b.digest !== single.configDigest)!;
    const proxy = await startLyingProxy({ upstream: source.url, digests: [layer.digest], mode: 'flip' });
    try {
      const result = await runCliJson<RunReport>([...backupArgs(lyingStore, proxy.url), '--repositories', 'apps/single', 'apps/layers'], {
        env: env(),
      });
      expect(result.exitCode).toBe(1);
      expect(proxy.lies.length).toBeGreaterThan(0);
      expect(result.json.failures).toHaveLength(1);
      expect(result.json.failures[0]!.error).toMatch(new RegExp(`apps/single:1\\.0: .*digest mismatch.*${layer.digest}`));
      await expect(access(join(lyingStore, 'blobs/sha256', layer.digest.slice(7)))).rejects.toThrow();
      await expect(access(join(lyingStore, 'blobs/sha256', single.digest.slice(7)))).rejects.toThrow();
      expect(result.json.counts.copied).toBe(2); // apps/layers:many and the signature tag (no shared layer)
      const list = await runCliJson<Array<{ tag?: string }>>(['list', '--from', lyingStore], { env: env() });
      expect(list.json.map((e) => e.tag).sort()).toEqual(['many', images[5]!.tag].sort());
    } finally {
      await proxy.stop();
    }
  });

  it('restore --as-of brings back the digest a tag had before it moved', async () => {
    const pitStore = await tempDir('store');
    const first = await pushImage(source, { repository: 'pit/app', tag: 'latest', variant: 'first' });
    expect((await runCli([...backupArgs(pitStore), '--repositories', 'pit/app'], { env: env() })).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    const between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const second = await pushImage(source, { repository: 'pit/app', tag: 'latest', variant: 'second' });
    expect(second.digest).not.toBe(first.digest);
    expect((await runCli([...backupArgs(pitStore), '--repositories', 'pit/app'], { env: env() })).exitCode).toBe(0);

    const old = await runCli(['restore', '--from', pitStore, '--registry', target.url, '--as-of', between, '--repository-prefix', 'old/'], {
      env: env(),
    });
    expect(old.exitCode, old.stderr).toBe(0);
    expect((await inspectRaw(`${target.host}/old/pit/app:latest`)).digest).toBe(first.digest);
    const now = await runCli(['restore', '--from', pitStore, '--registry', target.url, '--repository-prefix', 'new/'], { env: env() });
    expect(now.exitCode, now.stderr).toBe(0);
    expect((await inspectRaw(`${target.host}/new/pit/app:latest`)).digest).toBe(second.digest);
  });
});

describe('ECR as source and restore target', () => {
  it('lists through the ECR API, pulls with GetAuthorizationToken credentials, and restores into a new prefixed repository', async () => {
    // moto's ECR is control plane only: the data plane is a real registry guarded by the password
    // moto's GetAuthorizationToken hands out.
    const ecrRegistry = await startRegistry(ECR_AUTH);
    try {
      const ecr = moto.ecr();
      await ecr.send(new CreateRepositoryCommand({ repositoryName: 'team/app' }));
      const image = await inEcr(
        ecr,
        pushImage(ecrRegistry, { repository: 'team/app', tag: '1.0', variant: 'ecr' }),
        ecrRegistry.credentials,
      );

      const store = await tempDir('store');
      const ecrEnv = { ...env(), ECR_BACKUP_ECR_REGISTRY_URL: ecrRegistry.url };
      const backup = await runCliJson<RunReport>(['backup', '--to', store], { env: ecrEnv });
      expect(backup.exitCode, backup.stderr).toBe(0);
      expect(backup.json.results).toEqual([
        expect.objectContaining({ repository: 'team/app', tag: '1.0', digest: image.digest, status: 'copied' }),
      ]);

      const restore = await runCliJson<RunReport>(['restore', '--from', store, '--repository-prefix', 'restored/'], { env: ecrEnv });
      expect(restore.exitCode, restore.stderr).toBe(0);
      const repositories = await ecr.send(new DescribeRepositoriesCommand({}));
      expect(repositories.repositories?.map((r) => r.repositoryName)).toContain('restored/team/app');
      expect((await inspectRaw(`${ecrRegistry.host}/restored/team/app:1.0`, ecrRegistry.credentials)).digest).toBe(image.digest);
    } finally {
      await ecrRegistry.stop();
    }
  });
});

describe('usage errors', () => {
  it.each([
    [[], /Usage|usage/],
    [['backup'], /required option '--to <store>'/],
    [['backup', '--to', '/tmp/x', '--concurrency', '0'], /--concurrency must be an integer/],
    [['restore', '--from', '/tmp/x', '--registry', 'http://127.0.0.1:1', '--as-of', 'yesterday'], /--as-of must be an ISO 8601 time/],
    [['list', '--from', 'ftp://host/x'], /unsupported store URL scheme "ftp"/],
    [['backup', '--to', '/tmp/x', '--registry', 'http://registry.example.com'], /http/],
    [['backup', '--to', '/tmp/x', '--registry', 'http://127.0.0.1:1', '--username', 'u'], /--username needs --password-stdin/],
    [
      ['restore', '--from', '/tmp/x', '--registry', 'http://127.0.0.1:1', '--repository-prefix', '../evil/'],
      /--repository-prefix "..\/evil\/" is not a valid repository prefix/,
    ],
  ])('ecr-backup %j exits 2 with a clear message', async (args, message) => {
    const result = await runCli(args as string[], { env: env() });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('an unknown repository exits 2 and names it', async () => {
    const store = await tempDir('store');
    const result = await runCli([...backupArgs(store), '--repositories', 'apps/single', 'no/such-repo'], { env: env() });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/unknown repository no\/such-repo/);
    expect(await directoryBytes(store)).toBe(0);
  });
});
