// `ecr-backup stats` against the fixtures' known sizes, and `ecr-backup report` / report.md for runs
// made with the real CLI against a real registry.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunReport } from '../schema/contract.ts';
import { renderReportMarkdown } from '../core/engine/report.ts';
import type { StoreStats } from '../core/store/stats.ts';
import { directoryBytes, runCli, runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage, pushSharedBaseTags } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { tempDir } from './harness/process.ts';
import { useRegistry } from './harness/services.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

const source = useRegistry();
let store: string;
let shared: PushedImage[];
let single1: PushedImage;
let single2: PushedImage;
let run1: RunReport;
let run2: RunReport;

/** What one image occupies on its own: its blobs plus every manifest (the catalog's imageBytes). */
const imageBytes = (image: PushedImage) => image.blobBytes + image.manifests.reduce((sum, m) => sum + m.size, 0);
const uniqueBytes = (images: PushedImage[]) => {
  const sizes = new Map<string, number>();
  for (const image of images) for (const d of [...image.blobs, ...image.manifests]) sizes.set(d.digest, d.size);
  return [...sizes.values()].reduce((a, b) => a + b, 0);
};

beforeAll(async () => {
  store = await tempDir('stats-store');
  shared = (await pushSharedBaseTags(source, { repository: 'stats/shared', tags: ['a', 'b'], baseSize: 2 * MiB, uniqueSize: 128 * KiB }))
    .images;
  single1 = await pushImage(source, { repository: 'stats/single', tag: '1', variant: 'one' });
  const first = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store]);
  expect(first.exitCode, first.stderr).toBe(0);
  run1 = first.json;
  single2 = await pushImage(source, { repository: 'stats/single', tag: '1', variant: 'two' });
  const second = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store]);
  expect(second.exitCode, second.stderr).toBe(0);
  run2 = second.json;
}, 90_000);

afterAll(async () => {
  await cleanupFixtures();
});

describe('ecr-backup stats', () => {
  it("reports logical bytes, stored bytes and the dedup ratio from the fixtures' sizes", async () => {
    const result = await runCliJson<StoreStats>(['stats', '--from', store]);
    expect(result.exitCode, result.stderr).toBe(0);
    const { totals, repositories } = result.json;
    const all = [...shared, single1, single2];
    const logical = all.reduce((sum, i) => sum + imageBytes(i), 0);
    const stored = uniqueBytes(all);
    expect(stored).toBe(await directoryBytes(join(store, 'blobs')));
    expect(totals).toMatchObject({
      repositories: 2,
      tags: 3,
      untagged: 0,
      records: 4,
      logicalBytes: logical,
      currentLogicalBytes: logical - imageBytes(single1),
      storedBytes: stored,
      blobBytes: stored,
      blobs: new Set(all.flatMap((i) => [...i.blobs, ...i.manifests].map((d) => d.digest))).size,
      referencedBytes: stored,
      unreferencedBytes: 0,
      unreadableImages: 0,
    });
    expect(totals.dedupRatio).toBeCloseTo(logical / stored, 10);
    // Two tags on one 2 MiB base: about 2x for that repository.
    expect(totals.dedupRatio!).toBeGreaterThan(1.5);
    expect(totals.catalogBytes).toBeGreaterThan(0);

    const byName = Object.fromEntries(repositories.map((r) => [r.repository, r]));
    expect(byName['stats/shared']).toMatchObject({
      tags: 2,
      records: 2,
      logicalBytes: imageBytes(shared[0]!) + imageBytes(shared[1]!),
      storedBytes: uniqueBytes(shared),
    });
    expect(byName['stats/single']).toMatchObject({
      tags: 1,
      records: 2,
      logicalBytes: imageBytes(single1) + imageBytes(single2),
      currentLogicalBytes: imageBytes(single2),
      storedBytes: uniqueBytes([single1, single2]),
    });
    const single = byName['stats/single']!;
    expect(Date.parse(single.oldestBackup!)).toBeLessThan(Date.parse(single.newestBackup!));
    expect(Date.parse(single.oldestBackup!)).toBeGreaterThanOrEqual(Date.parse(run1.startedAt));
    expect(Date.parse(single.newestBackup!)).toBeLessThanOrEqual(Date.parse(run2.finishedAt));
    expect(totals.oldestBackup).toBe([byName['stats/shared']!.oldestBackup!, single.oldestBackup!].sort()[0]);
    expect(totals.newestBackup).toBe(single.newestBackup);

    const text = await runCli(['stats', '--from', store]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/stats\/shared\s+2\s+0\s+2\s/);
    expect(text.stdout).toContain(`dedup ratio ${(logical / stored).toFixed(2)}x`);
  });

  it('counts a blob no record references as unreferenced, and prune would free exactly the dropped history', async () => {
    const stray = randomBytes(3 * KiB);
    const strayPath = join(store, 'blobs/sha256', createHash('sha256').update(stray).digest('hex'));
    await writeFile(strayPath, stray);
    try {
      const stats = await runCliJson<StoreStats>(['stats', '--from', store]);
      expect(stats.json.totals.unreferencedBytes).toBe(stray.length);
      const pruned = await runCliJson<{ blobs: { deleted: number; bytesFreed: number } }>([
        'prune',
        '--from',
        store,
        '--keep-last',
        '1',
        '--dry-run',
        '--grace',
        '0s',
      ]);
      expect(pruned.json.blobs).toMatchObject({
        deleted: 1 + single1.blobs.length + single1.manifests.length,
        bytesFreed: stray.length + uniqueBytes([single1]),
      });
    } finally {
      await rm(strayPath);
    }
  });
});

describe('run reports', () => {
  it('every CLI run leaves report.json and a readable report.md', async () => {
    for (const run of [run1, run2]) {
      const json = RunReport.parse(JSON.parse(await readFile(join(store, 'runs', run.runId, 'report.json'), 'utf8')));
      const markdown = await readFile(join(store, 'runs', run.runId, 'report.md'), 'utf8');
      expect(markdown).toBe(renderReportMarkdown(json));
      expect(markdown).toContain(`# ecr-backup backup run ${run.runId}`);
      expect(markdown).toMatch(/\| images \| copied \| unchanged \| failed \|/);
    }
    const md2 = await readFile(join(store, 'runs', run2.runId, 'report.md'), 'utf8');
    expect(md2).toContain(`| stats/single | 1 | \`${single2.digest}\` | copied |`);
    expect(md2).toContain(`| stats/shared | a | \`${shared[0]!.digest}\` | unchanged |`);
  });

  it('`report` prints the latest run, `report RUN` a given one, `--json` the report itself', async () => {
    const latest = await runCli(['report', '--from', store]);
    expect(latest.exitCode, latest.stderr).toBe(0);
    expect(latest.stdout).toContain(`# ecr-backup backup run ${run2.runId}`);
    expect(latest.stdout).toContain('| 3 | 1 | 2 | 0 | 0 |');

    const first = await runCli(['report', run1.runId, '--from', store]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toContain(`# ecr-backup backup run ${run1.runId}`);
    expect(first.stdout).toContain('| 3 | 3 | 0 | 0 | 0 |');

    const json = await runCliJson<RunReport>(['report', run1.runId, '--from', store]);
    expect(json.json.runId).toBe(run1.runId);
    expect(json.json.counts).toEqual(run1.counts);

    const missing = await runCli(['report', 'no-such-run', '--from', store]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('no report for run no-such-run');
    const empty = await runCli(['report', '--from', await tempDir('stats-empty')]);
    expect(empty.exitCode).toBe(2);
  });
});
