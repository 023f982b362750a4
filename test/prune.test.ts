// `ecr-backup prune` end to end: history built with the real CLI against a real registry, pruned on a
// directory store and on moto S3 (plain, and with Object Lock), and pruned while a backup runs.
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { openStore } from '../core/store/url.ts';
import { verifyStore } from '../core/store/verify.ts';
import { handler as pruneHandler } from '../lambdas/prune.ts';
import { applyRetention, pruneStore, type PruneReport, type RetentionEntry } from '../core/store/prune.ts';
import { directoryBytes, runCli, runCliJson, startCli } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage, pushSharedBaseTags } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { applyAwsEnv } from './harness/moto.ts';
import { tempDir } from './harness/process.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'prune-store';
const LOCKED_BUCKET = 'prune-locked';

const { source, target, moto } = useServices({ source: registryService(), target: registryService(), moto: motoService({ awsEnv: true }) });
let s3: S3Client;
let dirStore: string;
const s3Store = `s3://${BUCKET}/hist`;
let v1: PushedImage;
let v2: PushedImage;
let v3: PushedImage;
let pinned: PushedImage;
let stable: PushedImage;

const env = () => moto.env;
const hex = (digest: string) => digest.slice('sha256:'.length);
const backup = async (store: string, repositories: string[]) => {
  const result = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--repositories', ...repositories], {
    env: env(),
  });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.json;
};

/** Every file under a directory with its size (what a dry run must leave untouched). */
async function snapshot(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out[join(entry.parentPath, entry.name).slice(dir.length)] = (await stat(join(entry.parentPath, entry.name))).size;
  }
  return out;
}

beforeAll(async () => {
  s3 = moto.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new CreateBucketCommand({ Bucket: LOCKED_BUCKET, ObjectLockEnabledForBucket: true }));
  dirStore = await tempDir('prune-store');
  // hist/app:v moves v1 -> v2 -> v3 (all on one 1 MiB base layer); :stable never moves; :pinned
  // arrives last with v1's digest, so v1 stays needed after v's history is pruned.
  const shared = (tag: string, uniqueSize: number) =>
    pushSharedBaseTags(source, { repository: 'hist/app', tags: [tag], baseSize: MiB, uniqueSize }).then((s) => s.images[0]!);
  v1 = await shared('v', 64 * KiB);
  stable = await pushImage(source, { repository: 'hist/app', tag: 'stable', variant: 'stable' });
  await Promise.all([backup(dirStore, ['hist/app']), backup(s3Store, ['hist/app'])]);
  v2 = await shared('v', 80 * KiB);
  await Promise.all([backup(dirStore, ['hist/app']), backup(s3Store, ['hist/app'])]);
  v3 = await shared('v', 96 * KiB);
  pinned = await shared('pinned', 64 * KiB);
  await Promise.all([backup(dirStore, ['hist/app']), backup(s3Store, ['hist/app'])]);
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

/** Blobs only v2 had: its manifest, its config and its own layer (the base is shared). */
const v2Only = () => {
  const base = v1.blobs.find((b) => b.mediaType !== v1.configMediaType)!;
  const only = [{ digest: v2.digest, size: v2.size }, ...v2.blobs.filter((b) => b.digest !== base.digest)];
  expect(only).toHaveLength(3);
  return only;
};

describe('retention rules', () => {
  const entry = (group: string, day: number, untagged = false): RetentionEntry => ({
    key: `${group}/${day}`,
    group,
    untagged,
    time: day * 86_400_000,
  });

  it('keep-last keeps the N newest per tag; keep-days keeps the window plus the value at the cutoff', () => {
    const entries = [
      entry('a', 1),
      entry('a', 5),
      entry('a', 9),
      entry('b', 2),
      entry('u', 1, true),
      entry('u', 8, true),
      entry('u', 9, true),
    ];
    const keys = (rule: Parameters<typeof applyRetention>[1]) =>
      applyRetention(entries, rule, new Date(10 * 86_400_000))
        .kept.map((e) => e.key)
        .sort();
    expect(keys({ keepLast: 1 })).toEqual(['a/9', 'b/2', 'u/9']);
    expect(keys({ keepLast: 2 })).toEqual(['a/5', 'a/9', 'b/2', 'u/8', 'u/9']);
    // Cutoff day 4: a keeps 5 and 9 plus 1 (its value on day 4); b keeps its only (old) value; untagged images older than the cutoff go.
    expect(keys({ keepDays: 6 })).toEqual(['a/1', 'a/5', 'a/9', 'b/2', 'u/8', 'u/9']);
    // Cutoff day 7: a keeps 9 and 5 (its value on day 7); union with keep-last 2.
    expect(keys({ keepDays: 3 })).toEqual(['a/5', 'a/9', 'b/2', 'u/8', 'u/9']);
    expect(keys({ keepDays: 0.5, keepLast: 1 })).toEqual(['a/9', 'b/2', 'u/9']);
    expect(() => applyRetention(entries, {}, new Date())).toThrow(/keepLast .* or keepDays/);
    expect(() => applyRetention(entries, { keepLast: 0 }, new Date())).toThrow(/keep-last/);
  });
});

describe('prune --dry-run and --keep-days on the directory store', () => {
  it('--dry-run reports what keep-last 1 would do and deletes nothing', async () => {
    const before = await snapshot(dirStore);
    const result = await runCliJson<PruneReport>(['prune', '--from', dirStore, '--keep-last', '1', '--grace', '0s', '--dry-run']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.json.dryRun).toBe(true);
    expect(result.json.droppedRecords.map((r) => [r.tag, r.digest]).sort()).toEqual(
      [
        ['v', v1.digest],
        ['v', v2.digest],
      ].sort(),
    );
    expect(result.json.blobs.deleted).toBe(3);
    expect(result.json.blobs.bytesFreed).toBe(v2Only().reduce((sum, b) => sum + b.size, 0));
    expect(await snapshot(dirStore)).toEqual(before);
  });

  it('--keep-days keeps the value each tag had at the cutoff (dry run, clock 10 days ahead)', async () => {
    const report = await pruneStore(new BackupStore(openStore(dirStore)), {
      keepDays: 1,
      dryRun: true,
      graceMs: 0,
      now: () => new Date(Date.now() + 10 * 86_400_000),
    });
    // Every record is older than the cutoff: each tag keeps only the value it had then, its newest.
    expect(report.droppedRecords.map((r) => r.digest).sort()).toEqual([v1.digest, v2.digest].sort());
    // With today's clock every record is within one day: nothing to drop.
    const today = await pruneStore(new BackupStore(openStore(dirStore)), { keepDays: 1, dryRun: true });
    expect(today.records).toEqual({ total: 5, kept: 5, dropped: 0 });
  });
});

describe.each([
  { name: 'directory', store: () => dirStore },
  { name: 's3', store: () => s3Store },
])('prune --keep-last 1 on the $name store', ({ name, store: storeOf }) => {
  it('drops old records, deletes only unreferenced blobs, and leaves a store that verifies and restores', async () => {
    const store = storeOf();
    expect(pinned.digest).toBe(v1.digest);
    const result = await runCliJson<PruneReport>(['prune', '--from', store, '--keep-last', '1', '--grace', '0s'], { env: env() });
    expect(result.exitCode, result.stderr).toBe(0);
    const report = result.json;
    expect(report.records).toEqual({ total: 5, kept: 3, dropped: 2 });
    expect(report.droppedRecords.map((r) => [r.repository, r.tag, r.digest]).sort()).toEqual(
      [
        ['hist/app', 'v', v1.digest],
        ['hist/app', 'v', v2.digest],
      ].sort(),
    );
    expect(report.blobs.deleted).toBe(3);
    expect(report.blobs.bytesFreed).toBe(v2Only().reduce((sum, b) => sum + b.size, 0));
    expect(report).toMatchObject({ sweep: 'done', locked: [], failed: [], problems: [], conflicts: [], deleteMarkers: 0 });

    const objects = openStore(store);
    for (const b of v2Only()) expect(await objects.head(`blobs/sha256/${hex(b.digest)}`), `deleted ${b.digest}`).toBeUndefined();
    for (const image of [v1, v3, stable]) {
      for (const b of [...image.blobs, ...image.manifests])
        expect(await objects.head(`blobs/sha256/${hex(b.digest)}`), `kept ${b.digest}`).toBeDefined();
    }
    const history = await new BackupStore(objects).history('hist/app');
    expect(history.tags.map((t) => [t.tag, t.records.map((r) => r.digest)])).toEqual([
      ['pinned', [v1.digest]],
      ['stable', [stable.digest]],
      ['v', [v3.digest]],
    ]);
    if (name === 'directory') {
      const expected = [v1, v3, stable].flatMap((i) => [...i.blobs, ...i.manifests]);
      expect(await directoryBytes(join(store, 'blobs'))).toBe(
        [...new Map(expected.map((b) => [b.digest, b.size])).values()].reduce((a, b) => a + b, 0),
      );
    }

    expect(await verifyStore(new BackupStore(objects))).toMatchObject({ problems: [], checkedImages: 3 });
    const restore = await runCliJson<RunReport>(['restore', '--from', store, '--registry', target.url, '--repository-prefix', `${name}/`], {
      env: env(),
    });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.counts).toMatchObject({ images: 3, failed: 0 });
    for (const [tag, image] of [
      ['v', v3],
      ['stable', stable],
      ['pinned', v1],
    ] as const) {
      expect((await inspectRaw(`${target.host}/${name}/hist/app:${tag}`)).digest).toBe(image.digest);
    }

    const again = await pruneStore(new BackupStore(objects), { keepLast: 1, graceMs: 0 });
    expect(again.records.dropped).toBe(0);
    expect(again.blobs.deleted).toBe(0);
  });
});

describe('prune while a backup is running', () => {
  it('never deletes what the running backup writes or needs; the backup succeeds and the store verifies', async () => {
    const store = await tempDir('prune-concurrent');
    const c1 = await pushImage(source, { repository: 'conc/app', tag: 'v', variant: 'c1' });
    await backup(store, ['conc/app']);
    const c2 = await pushImage(source, { repository: 'conc/app', tag: 'v', variant: 'c2' });
    await backup(store, ['conc/app']);
    // Age what is there so far by a day: c1's blobs are old garbage once its record is dropped.
    const dayAgo = new Date(Date.now() - 86_400_000);
    for (const entry of await readdir(store, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) await utimes(join(entry.parentPath, entry.name), dayAgo, dayAgo);
    }
    const big = await pushImage(source, {
      repository: 'conc/big',
      tag: '1',
      layerSizes: [16 * MiB, 16 * MiB, 16 * MiB, 16 * MiB],
      variant: 'big',
    });

    const child = startCli([
      'backup',
      '--registry',
      source.url,
      '--to',
      store,
      '--repositories',
      'conc/big',
      '--concurrency',
      '1',
      '--json',
    ]);
    let exited = false;
    void child.finally(() => (exited = true));
    // Start pruning once the backup has begun writing, and keep pruning until it ends.
    const tmp = join(store, '.tmp');
    while (!exited && (await readdir(tmp).catch(() => [])).length === 0) await new Promise((r) => setTimeout(r, 10));
    const reports: PruneReport[] = [];
    let during = 0;
    while (!exited) {
      reports.push(await pruneStore(new BackupStore(openStore(store)), { keepLast: 1, graceMs: 60_000 }));
      if (!exited) during++;
    }
    const result = await child;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(during).toBeGreaterThan(0);
    expect(JSON.parse(result.stdout).counts).toMatchObject({ images: 1, copied: 1, failed: 0 });
    for (const r of reports) expect(r).toMatchObject({ problems: [], conflicts: [], failed: [] });
    // The first prune dropped c1's record and collected its blobs; the big image is complete.
    expect(reports.reduce((n, r) => n + r.records.dropped, 0)).toBe(1);
    const objects = openStore(store);
    expect(await objects.head(`blobs/sha256/${hex(c1.digest)}`)).toBeUndefined();
    for (const b of [...big.blobs, ...big.manifests, ...c2.blobs, ...c2.manifests])
      expect(await objects.head(`blobs/sha256/${hex(b.digest)}`)).toBeDefined();

    expect((await verifyStore(new BackupStore(objects))).problems).toEqual([]);
  });
});

describe('prune on an S3 bucket with Object Lock', () => {
  it('reports locked records and blobs instead of failing, and keeps what a locked record needs', async () => {
    const store = `s3://${LOCKED_BUCKET}/p`;
    const l1 = await pushImage(source, { repository: 'lock/app', tag: 'v', variant: 'l1' });
    await backup(store, ['lock/app']);
    const l2 = await pushImage(source, { repository: 'lock/app', tag: 'v', variant: 'l2' });
    await backup(store, ['lock/app']);
    const lockedUntil = new Date(Date.now() + 86_400_000);
    const lock = { ObjectLockMode: 'GOVERNANCE' as const, ObjectLockRetainUntilDate: lockedUntil };

    // Lock l1's record (a new, locked version of the same bytes) and add two stray blobs, one locked.
    const records = await s3.send(new ListObjectsV2Command({ Bucket: LOCKED_BUCKET, Prefix: 'p/catalog/lock/app/_tags/v/' }));
    const oldRecord = records.Contents!.map((o) => o.Key!).sort()[0]!;
    expect(oldRecord).toContain(hex(l1.digest));
    const body = await (await s3.send(new GetObjectCommand({ Bucket: LOCKED_BUCKET, Key: oldRecord }))).Body!.transformToByteArray();
    await s3.send(new PutObjectCommand({ Bucket: LOCKED_BUCKET, Key: oldRecord, Body: body, ...lock }));
    const stray = () => {
      const bytes = randomBytes(4 * KiB);
      return { bytes, key: `p/blobs/sha256/${createHash('sha256').update(bytes).digest('hex')}` };
    };
    const lockedStray = stray();
    const freeStray = stray();
    await s3.send(new PutObjectCommand({ Bucket: LOCKED_BUCKET, Key: lockedStray.key, Body: lockedStray.bytes, ...lock }));
    await s3.send(new PutObjectCommand({ Bucket: LOCKED_BUCKET, Key: freeStray.key, Body: freeStray.bytes }));

    const result = await runCliJson<PruneReport>(['prune', '--from', store, '--keep-last', '1', '--grace', '0s'], { env: env() });
    expect(result.exitCode, result.stderr).toBe(0);
    const report = result.json;
    expect(report).toMatchObject({ failed: [], problems: [], conflicts: [], sweep: 'done' });
    expect(report.locked.map((l) => l.key).sort()).toEqual([oldRecord.slice(2), lockedStray.key.slice(2)].sort());
    for (const l of report.locked) expect(l.detail).toMatch(/retained by Object Lock \(GOVERNANCE\) until/);
    // The locked record stays in the catalog, so l1's blobs stay; only the free stray blob goes
    // (behind a delete marker: Object Lock buckets are versioned).
    expect(report.records.dropped).toBe(0);
    expect(report.blobs.deleted).toBe(1);
    expect(report.deleteMarkers).toBe(1);
    expect(report.bytesNoncurrent).toBe(4 * KiB);
    const head = (key: string) =>
      s3.send(new HeadObjectCommand({ Bucket: LOCKED_BUCKET, Key: key })).then(
        () => true,
        () => false,
      );
    expect(await head(freeStray.key)).toBe(false);
    expect(await head(lockedStray.key)).toBe(true);
    expect(await head(oldRecord)).toBe(true);
    for (const b of [...l1.blobs, ...l1.manifests, ...l2.blobs, ...l2.manifests])
      expect(await head(`p/blobs/sha256/${hex(b.digest)}`)).toBe(true);

    const text = await runCli(['prune', '--from', store, '--keep-last', '1', '--grace', '0s'], { env: env() });
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain('2 object(s) retained by Object Lock, left in place');
    expect((await verifyStore(new BackupStore(openStore(store)))).problems).toEqual([]);

    // The workflow's prune step: the same prune, the summary passed through, the report in runs/.
    const restoreLambdaEnv = applyAwsEnv({ STORE_URL: store, PRUNE_KEEP_LAST: '1', PRUNE_GRACE_SECONDS: '0' });
    try {
      const summary = { runId: 'wf-1', counts: { images: 1 }, reportKey: 'runs/wf-1/report.json' };
      const dry = await pruneHandler({ runId: 'wf-1', summary, input: { dryRun: true } });
      expect(dry).toMatchObject({ ...summary, prune: { dryRun: true, recordsDropped: 1, locked: 0, reportKey: 'runs/wf-1/prune.json' } });
      const out = await pruneHandler({ runId: 'wf-1', summary, input: {} });
      expect(out).toMatchObject({
        ...summary,
        prune: { dryRun: false, recordsDropped: 0, blobsDeleted: 0, locked: 2, failed: 0, conflicts: 0, sweep: 'done' },
      });
      const written = JSON.parse(
        Buffer.from(
          await (
            await s3.send(new GetObjectCommand({ Bucket: LOCKED_BUCKET, Key: 'p/runs/wf-1/prune.json' }))
          ).Body!.transformToByteArray(),
        ).toString(),
      );
      expect(written.locked).toHaveLength(2);
    } finally {
      restoreLambdaEnv();
    }
  });
});
