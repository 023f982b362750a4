// The docker-archive format end to end: the real CLI (and the locally run workflow) against a real registry,
// moto S3 and a directory store, with skopeo, an independent client, reading the tars and the restored images.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateRepositoryCommand } from '@aws-sdk/client-ecr';
import { startRegistry } from './harness/registry.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { tempDir } from './harness/process.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { evaluateRecordedCalls } from './harness/iam-calls.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution } from './harness/local-workflow-types.ts';
import { startLyingProxy } from './harness/lying-proxy.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectConfigDigest, inspectRaw } from './harness/fixture-tools.ts';
import { pushImage, pushMultiArchIndex } from './harness/fixtures.ts';
import { inEcr } from './harness/ecr-images.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { parseExecutionInput, type RunReport } from '../schema/contract.ts';
import { ENV } from '../schema/environment.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import type { CatalogRecord } from '../core/store/layout.ts';

const MiB = 1024 * 1024;
const BUCKET = 'archives';
const ARM64 = { os: 'linux', architecture: 'arm64' };

const { source, target, moto } = useServices({ source: registryService(), target: registryService(), moto: motoService() });
let s3: S3Client;
let single: PushedImage;
let multi: PushedImage;
let scratch: string;
const dirs: string[] = [];

beforeAll(async () => {
  s3 = moto.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // 12 MiB of random layer: larger than one S3 part (8 MiB), so the upload is a real multipart upload.
  single = await pushImage(source, { repository: 'apps/single', tag: '1.0', layerSizes: [12 * MiB, 64 * 1024] });
  multi = await pushMultiArchIndex(source, { repository: 'apps/multi', tag: 'v2' });
  scratch = await newDir('archive-scratch');
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  await cleanupFixtures();
});

async function newDir(name: string): Promise<string> {
  const dir = await tempDir(name);
  dirs.push(dir);
  return dir;
}
const newStore = () => newDir('archive-store');
/** Each test runs with its own TMPDIR, which the archive workspaces must leave empty. */
const newEnv = async () => ({ ...moto.env, TMPDIR: await newDir('archive-tmp') });
async function expectWorkspacesRemoved(env: { TMPDIR: string }) {
  expect((await readdir(env.TMPDIR)).filter((name) => name.startsWith('ecr-backup-archive-'))).toEqual([]);
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
type Entry = CatalogRecord;

/** `skopeo inspect docker-archive:` of a stored tar (decompressed first). */
async function inspectArchive(
  bytes: Buffer,
  compression: 'none' | 'gzip' | 'zstd',
): Promise<{ Architecture: string; Os: string; Layers: string[] }> {
  const file = join(scratch, `inspect-${Math.random().toString(36).slice(2)}.tar`);
  const tar =
    compression === 'gzip'
      ? gunzipSync(bytes)
      : compression === 'zstd'
        ? Buffer.from((await execa('zstd', ['-d', '-q', '-c'], { input: bytes, encoding: 'buffer' })).stdout)
        : bytes;
  await writeFile(file, tar);
  try {
    const { stdout } = await execa('skopeo', ['inspect', `docker-archive:${file}`]);
    return JSON.parse(stdout) as { Architecture: string; Os: string; Layers: string[] };
  } finally {
    await rm(file, { force: true });
  }
}

async function s3Object(key: string, bucket = BUCKET): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

// The tests are independent (own stores, prefixes, target repositories and TMPDIRs) and mostly wait on child
// processes, so they run concurrently; five concurrent skopeo runs on 2 busy cores can need over 120 s each.
describe('docker-archive', { timeout: 300_000 }, () => {
  it.concurrent('directory store: tars of a single- and a multi-arch tag, their records, list, an unchanged run, restore, mixed formats', async () => {
    const env = await newEnv();
    const store = await newStore();
    const label = 'us-east-1'; // the default: the region (moto's env sets AWS_REGION)

    const backup = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--format', 'docker-archive'], { env });
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.json.counts).toMatchObject({ images: 2, copied: 2, failed: 0 });
    expect(backup.json.results.find((r) => r.repository === 'apps/multi')?.archive).toMatchObject({
      key: `${label}/apps/multi/v2.tar`,
      platform: 'linux/amd64',
      sourcePlatforms: ['linux/amd64', 'linux/arm64'],
    });
    await expectWorkspacesRemoved(env);

    const list = await runCliJson<Entry[]>(['list', '--from', store], { env });
    expect(list.json).toHaveLength(2);
    for (const [image, key, config] of [
      [single, `${label}/apps/single/1.0.tar`, single.configDigest],
      [multi, `${label}/apps/multi/v2.tar`, await inspectConfigDigest(multi.reference)],
    ] as const) {
      const entry = list.json.find((e) => e.repository === image.repository)!;
      // The catalog names the SOURCE manifest (for the multi-arch tag: its index) and the tar's hash.
      expect(entry).toMatchObject({ tag: image.tag, digest: image.digest, mediaType: image.mediaType, format: 'docker-archive' });
      expect(entry.archive).toMatchObject({ key, compression: 'none', platform: 'linux/amd64', configDigest: config });
      const bytes = await readFile(join(store, key));
      expect(entry.archive!.sha256).toBe(sha256(bytes));
      expect(entry.archive!.size).toBe(bytes.length);
      expect(await inspectArchive(bytes, 'none')).toMatchObject({ Os: 'linux', Architecture: 'amd64' });
    }

    // list shows the format and states the digest caveat.
    const text = await runCli(['list', '--from', store], { env });
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^REPOSITORY\s+TAG\s+FORMAT\s+DIGEST/);
    expect(text.stdout).toMatch(/apps\/multi\s+v2\s+docker-archive/);
    expect(text.stdout).toContain('docker-archive entries keep the image ID (config digest), not the manifest digest');

    // An unchanged tag is not archived again.
    const again = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--format', 'docker-archive'], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json.counts).toMatchObject({ images: 2, unchanged: 2, copied: 0, bytesCopied: 0 });

    // Restore: the image ID (config digest) survives, the manifest digest does not.
    const restore = await runCli(['restore', '--from', store, '--registry', target.url, '--repository-prefix', 'dir/'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(
      /dir\/apps\/multi:v2: restored from docker-archive us-east-1\/apps\/multi\/v2\.tar \(linux\/amd64\) as sha256:/,
    );
    expect(await inspectConfigDigest(`${target.host}/dir/apps/single:1.0`)).toBe(single.configDigest);
    expect(await inspectConfigDigest(`${target.host}/dir/apps/multi:v2`)).toBe(await inspectConfigDigest(multi.reference));
    expect((await inspectRaw(`${target.host}/dir/apps/single:1.0`)).digest).not.toBe(single.digest);
    await expectWorkspacesRemoved(env);

    // A later oci backup of the same digest is recorded, and restore follows each tag's latest format.
    const oci = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--repositories', 'apps/single'], { env });
    expect(oci.exitCode, oci.stderr).toBe(0);
    expect(oci.json.counts).toMatchObject({ images: 1, copied: 1 });
    const formats = await runCliJson<Entry[]>(['list', '--from', store], { env });
    expect(formats.json.find((e) => e.repository === 'apps/single')?.format ?? 'oci').toBe('oci');
    expect(formats.json.find((e) => e.repository === 'apps/multi')?.format).toBe('docker-archive');
    const mixed = await runCliJson<RunReport>(['restore', '--from', store, '--registry', target.url, '--repository-prefix', 'mixed/'], {
      env,
    });
    expect(mixed.exitCode, mixed.stderr).toBe(0);
    expect((await inspectRaw(`${target.host}/mixed/apps/single:1.0`)).digest).toBe(single.digest); // oci: digest for digest
    expect(mixed.json.results.find((r) => r.repository === 'apps/single')?.archive).toBeUndefined();
    expect(mixed.json.results.find((r) => r.repository === 'apps/multi')?.archive?.restoredDigest).toMatch(/^sha256:/);
    expect(await inspectConfigDigest(`${target.host}/mixed/apps/multi:v2`)).toBe(await inspectConfigDigest(multi.reference));
  });

  it.concurrent('moto S3: gzip tars with a label and --platform linux/arm64, multipart for the large one, restored', async () => {
    const env = await newEnv();
    const store = `s3://${BUCKET}/dr`;
    const backup = await runCli(
      [
        'backup',
        '--registry',
        source.url,
        '--to',
        store,
        '--format',
        'docker-archive',
        '--label',
        'eu-copy',
        '--compression',
        'gzip',
        '--platform',
        'linux/arm64',
      ],
      { env },
    );
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.stdout).toContain('apps/multi:v2: multi-arch source (linux/amd64, linux/arm64): docker-archive holds linux/arm64 only');
    expect(backup.stdout).toMatch(/keep the image ID \(config digest\), not the manifest digest/);

    const list = await runCliJson<Entry[]>(['list', '--from', store], { env });
    const arm64Config = await inspectConfigDigest(multi.reference, undefined, ARM64);
    for (const [image, platform, config] of [
      [single, 'linux/amd64', single.configDigest],
      [multi, 'linux/arm64', arm64Config],
    ] as const) {
      const entry = list.json.find((e) => e.repository === image.repository)!;
      const key = `eu-copy/${image.repository}/${image.tag}.tar.gz`;
      expect(entry).toMatchObject({ digest: image.digest, format: 'docker-archive' });
      expect(entry.archive).toMatchObject({ key, compression: 'gzip', platform, configDigest: config });
      const bytes = await s3Object(`dr/${key}`);
      expect(entry.archive!.sha256).toBe(sha256(bytes));
      expect(entry.archive!.size).toBe(bytes.length);
      expect((await inspectArchive(bytes, 'gzip')).Architecture).toBe(platform.split('/')[1]);
    }
    expect(list.json.find((e) => e.repository === 'apps/single')!.archive!.size).toBeGreaterThan(12 * MiB);

    const restore = await runCliJson<RunReport>(['restore', '--from', store, '--registry', target.url, '--repository-prefix', 's3/'], {
      env,
    });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.counts).toMatchObject({ images: 2, copied: 2 });
    expect(await inspectConfigDigest(`${target.host}/s3/apps/single:1.0`)).toBe(single.configDigest);
    expect(await inspectConfigDigest(`${target.host}/s3/apps/multi:v2`, undefined, ARM64)).toBe(arm64Config);
    await expectWorkspacesRemoved(env);
  });

  it.concurrent('zstd: a tar restores; verify and restore detect a corrupted tar', async () => {
    const env = await newEnv();
    const store = await newStore();
    const backup = await runCliJson<RunReport>(
      [
        'backup',
        '--registry',
        source.url,
        '--to',
        store,
        '--format',
        'docker-archive',
        '--compression',
        'zstd',
        '--label',
        'z',
        '--repositories',
        'apps/single',
      ],
      { env },
    );
    expect(backup.exitCode, backup.stderr).toBe(0);
    const path = join(store, 'z/apps/single/1.0.tar.zst');
    const bytes = await readFile(path);
    expect(backup.json.results[0]?.archive).toMatchObject({ key: 'z/apps/single/1.0.tar.zst', sha256: sha256(bytes), size: bytes.length });
    expect((await inspectArchive(bytes, 'zstd')).Layers).toHaveLength(2);

    const restore = await runCli(['restore', '--from', store, '--registry', target.url, '--repository-prefix', 'zstd/'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await inspectConfigDigest(`${target.host}/zstd/apps/single:1.0`)).toBe(single.configDigest);

    const clean = await runCliJson<{ problems: unknown[] }>(['verify', '--from', store], { env });
    expect(clean.exitCode).toBe(0);
    expect(clean.json.problems).toEqual([]);

    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(path, bytes);
    const verify = await runCliJson<{ problems: Array<{ problem: string; blob: string; repository: string }> }>(
      ['verify', '--from', store],
      { env },
    );
    expect(verify.exitCode).toBe(1);
    expect(verify.json.problems).toEqual([
      expect.objectContaining({ problem: 'corrupt', blob: 'z/apps/single/1.0.tar.zst', repository: 'apps/single' }),
    ]);

    const refused = await runCliJson<RunReport>(['restore', '--from', store, '--registry', target.url, '--repository-prefix', 'corrupt/'], {
      env,
    });
    expect(refused.exitCode).toBe(1);
    expect(refused.json.failures[0]?.error).toMatch(/apps\/single:1\.0: z\/apps\/single\/1\.0\.tar\.zst: digest mismatch/);
    await expect(inspectRaw(`${target.host}/corrupt/apps/single:1.0`)).rejects.toThrow();
    await expectWorkspacesRemoved(env);
  });

  it.concurrent('a registry serving bad bytes mid-stream: skopeo fails, nothing is stored, the store is unchanged', async () => {
    const env = await newEnv();
    const store = await newStore();
    const layer = single.blobs.find((b) => b.digest !== single.configDigest)!;
    const proxy = await startLyingProxy({ upstream: source.url, digests: [layer.digest], mode: 'truncate' });
    try {
      const backup = await runCliJson<RunReport>(
        ['backup', '--registry', proxy.url, '--to', store, '--format', 'docker-archive', '--repositories', 'apps/single', '--label', 'bad'],
        { env },
      );
      expect(backup.exitCode).toBe(1);
      expect(proxy.lies.length).toBeGreaterThan(0);
      expect(backup.json.failures[0]?.error).toMatch(/^apps\/single:1\.0: skopeo copy to docker-archive failed: /);
      // Neither a partial tar (nor its temporary file) nor a catalog record: only the run report.
      expect((await readdir(store, { recursive: true })).filter((f) => !f.startsWith('runs') && f !== '.tmp')).toEqual([]);
      await expectWorkspacesRemoved(env);
    } finally {
      await proxy.stop();
    }
  });

  it.concurrent('workflow (stack imageFormat, execution input, listing Lambda, worker): archives, skips unchanged tags, re-archives on new settings, restores', async () => {
    const env = await newEnv();
    // ECR: moto's control plane, a real registry (with the password moto's token carries) as data plane.
    const auth = ECR_AUTH;
    const [ecrRegistry, fresh] = await Promise.all([startRegistry(auth), startRegistry(auth)]);
    try {
      const ecr = moto.ecr();
      await ecr.send(new CreateRepositoryCommand({ repositoryName: 'team/app' }));
      const image = await inEcr(ecr, pushMultiArchIndex(ecrRegistry, { repository: 'team/app', tag: '2.0', variant: 'wf-archive' }), auth);
      await s3.send(new CreateBucketCommand({ Bucket: 'wf-archive' }));
      const config: EcrBackupContext = {
        stackName: 'EcrBackupArchiveTest',
        repositories: ['team/**'],
        restoreRepositories: ['team/**', 'restored/**'],
        schedule: null,
        prefix: 'p/',
        imageFormat: 'docker-archive',
      };
      const workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
      const run = (input: unknown) =>
        workflow.run(input, {
          bucket: 'wf-archive',
          lambdaEnv: { [ENV.ECR_REGISTRY_URL]: ecrRegistry.url },
          workerEnv: (mode) => ({ [ENV.ECR_REGISTRY_URL]: mode === 'restore' ? fresh.url : ecrRegistry.url, TMPDIR: env.TMPDIR }),
        });
      const explain = (e: LocalExecution) =>
        JSON.stringify({ status: e.status, cause: e.cause, workers: e.workers.map((w) => w.output.slice(-2000)) });

      // `{}`: the stack's imageFormat, the default label (the region) and platform (linux/amd64).
      const first = await run({});
      expect(first.status, explain(first)).toBe('SUCCEEDED');
      expect(first.output).toMatchObject({ counts: { images: 1, copied: 1, failed: 0 } });
      expect((await inspectArchive(await s3Object('p/us-east-1/team/app/2.0.tar', 'wf-archive'), 'none')).Architecture).toBe('amd64');

      // Unchanged: the listing Lambda leaves it out, no worker runs.
      const second = await run({});
      expect(second.status, explain(second)).toBe('SUCCEEDED');
      expect(second.workers).toEqual([]);
      expect(second.output).toMatchObject({ counts: { images: 1, unchanged: 1, copied: 0 } });

      // Other settings in the input: archived again.
      const arm = await run({ compression: 'zstd', platform: 'linux/arm64' });
      expect(arm.status, explain(arm)).toBe('SUCCEEDED');
      expect(arm.output).toMatchObject({ counts: { images: 1, copied: 1 } });
      expect((await inspectArchive(await s3Object('p/us-east-1/team/app/2.0.tar.zst', 'wf-archive'), 'zstd')).Architecture).toBe('arm64');

      const restore = await run({ mode: 'restore', target: { repositoryPrefix: 'restored/' } });
      expect(restore.status, explain(restore)).toBe('SUCCEEDED');
      expect(restore.output).toMatchObject({ counts: { images: 1, copied: 1, failed: 0 } });
      expect(await inspectConfigDigest(`${fresh.host}/restored/team/app:2.0`, auth)).toBe(
        await inspectConfigDigest(image.reference, auth, ARM64),
      );
      await expectWorkspacesRemoved(env);
      // Every AWS call, evaluated against the synthesized policies: the roles must reach the archive keys.
      expect((await evaluateRecordedCalls(workflow)).denied).toEqual([]);
    } finally {
      await Promise.all([ecrRegistry.stop(), fresh.stop()]);
    }
  });
});

describe('docker-archive refusals', () => {
  it.each([
    [['--compression', 'gzip'], /--compression applies to --format docker-archive only/],
    [
      ['--format', 'docker-archive', '--label', 'catalog', '--platform', 'linux/arm64'],
      /invalid archive label .*must not be one of blobs, catalog, runs/,
    ],
  ])('backup %j exits 2', async (args, message) => {
    const result = await runCli(['backup', '--registry', source.url, '--to', join(scratch, 'never'), ...args], { env: await newEnv() });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('the execution input takes the archive settings for backups only', () => {
    expect(parseExecutionInput({ format: 'docker-archive', label: 'dr', compression: 'zstd', platform: 'linux/arm64/v8' })).toMatchObject({
      format: 'docker-archive',
    });
    expect(() => parseExecutionInput({ mode: 'restore', format: 'docker-archive' })).toThrow(/format: format applies to backup runs only/);
    expect(() => parseExecutionInput({ format: 'oci', compression: 'gzip' })).toThrow(
      /compression: compression applies to the docker-archive format only/,
    );
    expect(() => parseExecutionInput({ label: 'runs' })).toThrow(/label: must not be one of/);
    expect(() => parseExecutionInput({ platform: 'amd64' })).toThrow(/platform: not a platform/);
  });
});
