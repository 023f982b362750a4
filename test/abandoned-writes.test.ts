// Leftovers of killed runs: a directory store's .tmp/ files and an S3 store's incomplete multipart
// uploads are removed by prune once untouched for the age threshold (24 h in the CLI), and reported;
// a write still in progress (touched recently) and uploads outside the store's prefix are left alone.
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PruneReport } from '../core/store/prune.ts';
import { pruneStore } from '../core/store/prune.ts';
import { writeJson } from '../core/store/object-store.ts';
import { openStore } from '../core/store/url.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { useMoto } from './harness/services.ts';
import { tempDir } from './harness/process.ts';

const BUCKET = 'abandoned';
const DAY = 24 * 3_600_000;

const moto = useMoto({ awsEnv: true, buckets: [BUCKET] });
let s3: S3Client;

beforeAll(() => {
  s3 = moto.s3();
});

describe('prune removes leftovers of killed runs', () => {
  it('directory store: .tmp/ files untouched for 24 h are removed and reported; a recent one (a running write) stays', async () => {
    const dir = await tempDir('abandoned-dir');
    await writeJson(openStore(dir), 'runs/keep.json', { kept: true });
    await mkdir(join(dir, '.tmp'), { recursive: true });
    await writeFile(join(dir, '.tmp', 'killed'), Buffer.alloc(1000));
    await writeFile(join(dir, '.tmp', 'running'), Buffer.alloc(10));
    const twoDaysAgo = new Date(Date.now() - 2 * DAY);
    await utimes(join(dir, '.tmp', 'killed'), twoDaysAgo, twoDaysAgo);

    const dry = await runCliJson<PruneReport>(['prune', '--from', dir, '--keep-last', '1', '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.json.abandonedWrites?.map((l) => l.key)).toEqual(['.tmp/killed']);
    expect((await readdir(join(dir, '.tmp'))).sort()).toEqual(['killed', 'running']);

    const text = await runCli(['prune', '--from', dir, '--keep-last', '1']);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain('removed 1 leftover(s) of killed runs');
    expect(text.stdout).toContain('.tmp/killed');
    expect(await readdir(join(dir, '.tmp'))).toEqual(['running']);
    expect(await readdir(join(dir, 'runs'))).toEqual(['keep.json']);
  }, 120_000);

  it('S3 store: incomplete multipart uploads under the prefix older than the threshold are aborted; recent ones and other prefixes stay', async () => {
    const upload = async (Key: string) => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
      await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }));
    };
    await upload('store/blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000');
    await upload('elsewhere/blob');
    const pending = async () =>
      ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).map((u) => u.Key).sort();
    const objects = openStore(`s3://${BUCKET}/store`);
    const prune = (now: Date, dryRun = false) => pruneStore(objects, { keepLast: 1, abandonedWritesAgeMs: DAY, now: () => now, dryRun });

    // Started moments ago: a running backup's upload, never touched.
    const recent = await prune(new Date());
    expect(recent.abandonedWrites).toEqual([]);
    expect(recent.failed).toEqual([]);

    const dayLater = new Date(Date.now() + DAY + 3_600_000);
    const dry = await prune(dayLater, true);
    expect(dry.abandonedWrites?.map((l) => l.key)).toEqual([
      'blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000',
    ]);
    expect(await pending()).toHaveLength(2);

    const pruned = await prune(dayLater);
    expect(pruned.failed).toEqual([]);
    expect(pruned.abandonedWrites?.map((l) => l.key)).toEqual([
      'blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000',
    ]);
    expect(await pending()).toEqual(['elsewhere/blob']);
  }, 120_000);
});
