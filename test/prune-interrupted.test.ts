// A prune interrupted at every point (a failed delete in any batch, the process killed with -9 while a
// delete request is in flight or after its reply was lost) leaves a store where every manifest still
// has its whole image, so a later backup of a pruned digest copies what is missing, and every listed
// image restores digest for digest. Also: --keep-last counts a tag's values, not its records.
import { CopyObjectCommand, CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { cp } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { BLOBS_PREFIX, tagRecordKey, compactTime } from '../core/store/layout.ts';
import { deleteKeys, readJson, writeJson, type ObjectStore } from '../core/store/object-store.ts';
import { pruneStore } from '../core/store/prune.ts';
import { ReferenceWalker } from '../core/store/references.ts';
import { openStore } from '../core/store/url.ts';
import { verifyStore } from '../core/store/verify.ts';
import { runCliJson, startCli } from './harness/cli.ts';
import { copyImages } from '../core/engine/run.ts';
import { MANIFEST_ACCEPT } from '../core/model/manifest.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage, pushMultiArchIndex } from './harness/fixtures.ts';
import { pushManifestHttp } from './harness/http-push.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { startLyingProxy, type LyingProxy } from './harness/lying-proxy.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { tempDir } from './harness/process.ts';

const BUCKET = 'prune-kill';
const REPO = 'pi/app';

const { source, target, moto } = useServices({ source: registryService(), target: registryService(), moto: motoService({ awsEnv: true }) });
let s3: S3Client;
let baseDir: string;
let old: PushedImage; // tag v's first value: an index of two images, dropped by keep-last 1
let current: PushedImage; // tag v's value now

beforeAll(async () => {
  s3 = moto.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  baseDir = await tempDir('prune-base');
  const backup = async (store: string) => {
    const r = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--repositories', REPO], { env: moto.env });
    expect(r.exitCode, r.stderr).toBe(0);
  };
  old = await pushMultiArchIndex(source, { repository: REPO, tag: 'v', variant: 'old' });
  await Promise.all([backup(baseDir), backup(`s3://${BUCKET}/base`)]);
  current = await pushImage(source, { repository: REPO, tag: 'v', variant: 'current' });
  await Promise.all([backup(baseDir), backup(`s3://${BUCKET}/base`)]);
  // The source gains a tag on the old value (a rollback): a later backup needs the pruned image again.
  const raw = await inspectRaw(`${source.host}/${REPO}@${old.digest}`);
  await pushManifestHttp(source, { repository: REPO, reference: 'rollback', manifest: raw.bytes, mediaType: raw.mediaType });
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

/** Manifests in blobs/ whose image is not complete: the invariant says there are none. */
async function incompleteManifests(objects: ObjectStore): Promise<string[]> {
  const walker = new ReferenceWalker(objects);
  const bad: string[] = [];
  for await (const o of objects.list(BLOBS_PREFIX)) {
    const digest = `sha256:${o.key.slice(BLOBS_PREFIX.length)}`;
    if ((await walker.classify(digest)).kind !== 'manifest') continue;
    const tree = await walker.tree({ digest });
    const missing: string[] = [];
    for (const ref of tree.refs.keys()) if (!(await objects.head(`${BLOBS_PREFIX}${ref.slice('sha256:'.length)}`))) missing.push(ref);
    if (tree.problems.length > 0 || missing.length > 0)
      bad.push(`${digest} lacks ${[...missing, ...tree.problems.map((p) => p.digest)].join(', ')}`);
  }
  return bad;
}

const registry = (url: string) => new RegistryEndpoint(url, { credentials: { get: async () => undefined } });
const items = [
  { repository: REPO, tag: 'v' },
  { repository: REPO, tag: 'rollback' },
];

/**
 * After an interrupted prune: no manifest without its content; a backup (the engine the CLI runs)
 * copies the rolled-back image again, and every listed image restores digest for digest.
 */
async function assertRecovers(store: string, prefix: string): Promise<void> {
  expect(await incompleteManifests(openStore(store))).toEqual([]);
  const backup = await copyImages({ source: registry(source.url), destination: new BackupStore(openStore(store)), items });
  expect(backup.map((r) => [r.tag, r.status, r.error])).toEqual([
    ['v', 'unchanged', undefined],
    ['rollback', expect.stringMatching(/copied|unchanged/), undefined],
  ]);
  expect((await verifyStore(new BackupStore(openStore(store)))).problems).toEqual([]);
  const listed = await new BackupStore(openStore(store)).repository(REPO).listImages();
  expect(listed.map((l) => [l.tag, l.digest])).toEqual([
    ['rollback', old.digest],
    ['v', current.digest],
  ]);
  const restore = await copyImages({
    source: new BackupStore(openStore(store)),
    destination: registry(target.url),
    items,
    repositoryPrefix: `${prefix}/`,
  });
  expect(restore.map((r) => r.status)).not.toContain('failed');
  for (const { tag, digest } of listed) {
    const head = await fetch(`${target.url}/v2/${prefix}/${REPO}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
    });
    expect(head.headers.get('docker-content-digest'), `${prefix} ${tag}`).toBe(digest);
  }
}

/** The store with its deletes sabotaged at the `call`-th delete request (batch). */
function sabotaged(objects: ObjectStore, call: number, how: 'abort' | 'fail-one'): ObjectStore {
  let calls = 0;
  const deleteMany = async (keys: readonly string[]) => {
    calls++;
    if (calls !== call) return deleteKeys(objects, keys);
    if (how === 'abort') throw new Error('injected: prune interrupted');
    const [first, ...rest] = keys;
    const result = await deleteKeys(objects, rest);
    return { ...result, failed: [...result.failed, { key: first!, error: 'injected: delete failed' }] };
  };
  return new Proxy(objects, {
    get: (t, p) => {
      if (p === 'deleteMany') return deleteMany;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

describe('prune interrupted at every delete batch (directory store, one key per batch)', () => {
  it.each(['abort', 'fail-one'] as const)(
    '%s: no manifest outlives its content; a backup repairs the pruned image; all restores exact',
    async (how) => {
      // One catalog record, the index, its two image manifests, then two configs and two layers.
      const batches = 1 + 1 + 2 + 4;
      for (let call = 1; call <= batches; call++) {
        const dir = await tempDir(`prune-${how}-${call}`);
        await cp(baseDir, dir, { recursive: true });
        const run = pruneStore(new BackupStore(sabotaged(openStore(dir), call, how)), { keepLast: 1, graceMs: 0, batchSize: 1 });
        if (how === 'abort') await expect(run).rejects.toThrow(/injected/);
        else expect((await run).failed).toHaveLength(1);
        await assertRecovers(dir, `${how}${call}`);
      }
    },
    180_000,
  );
});

describe('prune killed with -9 during a delete request (S3 store behind a stalling proxy)', () => {
  it.each(['hold', 'lose-response'] as const)(
    '%s: at each delete request the store stays restorable and a backup repairs the pruned image',
    async (action) => {
      // Records, the index, the image manifests, the configs and layers: four DeleteObjects requests;
      // killed during the 2nd, 3rd or 4th (during the 1st, nothing but records can have gone).
      for (let nth = 2; nth <= 4; nth++) {
        const prefix = `kill-${action}-${nth}`;
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'base/' }));
        for (const o of listed.Contents ?? []) {
          await s3.send(
            new CopyObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${o.Key!.slice('base/'.length)}`, CopySource: `${BUCKET}/${o.Key}` }),
          );
        }
        let deletes = 0;
        const proxy: LyingProxy = await startLyingProxy({
          upstream: moto.url,
          intercept: ({ method, query }) =>
            method === 'POST' && /[?&]delete(=|&|$)/.test(query) && ++deletes === nth ? action : undefined,
        });
        try {
          const child = startCli(['prune', '--from', `s3://${BUCKET}/${prefix}`, '--keep-last', '1', '--grace', '0s'], {
            env: { ...moto.env, AWS_ENDPOINT_URL: proxy.url },
          });
          let exited = false;
          void child.finally(() => (exited = true));
          while (!exited && !proxy.intercepted.some((i) => i.action === 'hold' || i.upstreamDone))
            await new Promise((r) => setTimeout(r, 10));
          expect(exited, `prune ended before its delete request ${nth}`).toBe(false);
          child.kill('SIGKILL');
          expect((await child).signal).toBe('SIGKILL');
        } finally {
          await proxy.stop();
        }
        await assertRecovers(`s3://${BUCKET}/${prefix}`, prefix);
      }
    },
    180_000,
  );
});

describe('--keep-last counts values, not records', () => {
  it('repeated records of one value (overlapping runs) count once and are dropped; the previous value is kept', async () => {
    const dir = await tempDir('prune-dups');
    await cp(baseDir, dir, { recursive: true });
    const objects = openStore(dir);
    // A second run recorded the current value again, a second after the first.
    const history = await new BackupStore(objects).history(REPO);
    const latest = history.tags.find((t) => t.tag === 'v')!.records.at(-1)!;
    const time = new Date(Date.parse(latest.backedUpAt) + 1000);
    await writeJson(objects, tagRecordKey(REPO, 'v', compactTime(time), latest.digest), { ...latest, backedUpAt: time.toISOString() });
    const report = await pruneStore(new BackupStore(objects), { keepLast: 2, graceMs: 0 });
    expect(report.droppedRecords.map((r) => [r.digest, r.backedUpAt])).toEqual([[current.digest, time.toISOString()]]);
    const after = await new BackupStore(objects).history(REPO);
    expect(after.tags.find((t) => t.tag === 'v')!.records.map((r) => r.digest)).toEqual([old.digest, current.digest]);
    expect(report.blobs.deleted).toBe(0);
    expect(await readJson(objects, `${BLOBS_PREFIX}${old.digest.slice(7)}`)).toBeDefined();
  });
});
