// `ecr-backup drill` against a real registry (docker-registry with `delete: enabled`) and a
// directory store: restore a sample into a scratch prefix, every digest compared with the record,
// scratch images deleted, a report under runs/, exit 1 when the drill fails.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryService, useServices } from './harness/services.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage, pushMultiArchIndex } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { tempDir } from './harness/process.ts';
import { DrillReport, drillReportKey } from '../schema/drill.ts';
import { blobKey } from '../core/store/layout.ts';

const { source, target } = useServices({ source: registryService(), target: registryService() });
let store: string;
const images: PushedImage[] = [];

beforeAll(async () => {
  images.push(await pushImage(source, { repository: 'team/app', tag: '1.0', variant: 'drill-app' }));
  images.push(await pushMultiArchIndex(source, { repository: 'team/app', tag: 'multi', variant: 'drill-multi' }));
  images.push(await pushImage(source, { repository: 'team/lib', tag: '2.0', variant: 'drill-lib' }));
  store = await tempDir('drill-store');
  const backup = await runCli(['backup', '--registry', source.url, '--to', store]);
  expect(backup.exitCode, backup.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

/** The registry's answer for a manifest (status only). */
const manifestStatus = async (repository: string, reference: string) =>
  (
    await fetch(`${target.url}/v2/${repository}/manifests/${reference}`, {
      headers: {
        accept:
          'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
      },
    })
  ).status;

describe('ecr-backup drill', () => {
  it('restores a sample into the scratch prefix with the recorded digests, deletes it again, and writes the report', async () => {
    const { exitCode, json, stderr } = await runCliJson<DrillReport>([
      'drill',
      '--from',
      store,
      '--registry',
      target.url,
      '--sample',
      '2',
      '--prefix',
      'drill-a',
    ]);
    expect(exitCode, stderr).toBe(0);
    const report = DrillReport.parse(json);
    expect(report).toMatchObject({
      ok: true,
      storeImages: 3,
      sampled: 2,
      passed: 2,
      failed: 0,
      scratchPrefix: 'drill-a/',
      cleanup: { deleted: 2, problems: [] },
    });
    const byName = new Map(images.map((i) => [`${i.repository}:${i.tag}`, i]));
    for (const image of report.images) {
      const pushed = byName.get(`${image.repository}:${image.tag}`)!;
      expect(image).toMatchObject({
        status: 'passed',
        scratchRepository: `drill-a/${image.repository}`,
        expectedDigest: pushed.digest,
        restoredDigest: pushed.digest,
      });
      // Gone from the registry: neither the tag nor the digest answers.
      expect(await manifestStatus(image.scratchRepository, image.tag)).toBe(404);
      expect(await manifestStatus(image.scratchRepository, pushed.digest)).toBe(404);
    }
    expect(report.sampleBytes).toBeGreaterThan(0);
    expect(report.throughputBytesPerSecond).toBeGreaterThan(0);
    expect(report.rto.storeBytes).toBeGreaterThanOrEqual(report.sampleBytes);
    expect(report.rto.estimatedSeconds).toBeCloseTo(report.rto.storeBytes / report.throughputBytesPerSecond, 0);
    // The same report is in the store, under runs/.
    expect(DrillReport.parse(JSON.parse(await readFile(join(store, drillReportKey(report.drillId)), 'utf8')))).toEqual(report);
  });

  it('prints the figures a user reads: result, throughput, RTO estimate and cleanup', async () => {
    const { exitCode, stdout, stderr } = await runCli(['drill', '--from', store, '--registry', target.url, '--sample', 'all']);
    expect(exitCode, stderr).toBe(0);
    expect(stdout).toMatch(/^drill drill-\S+: PASSED: 3 of 3 sampled image\(s\) \(of 3\) restored with their recorded digests/);
    expect(stdout).toMatch(/restore: .* in [\d.]+ s = .*\/s/);
    expect(stdout).toMatch(/RTO estimate for the whole store \(.*\): [\d.]+ s/);
    expect(stdout).toContain('cleanup: 3 scratch image(s) deleted');
    console.log(`drill figures:\n${stdout}`);
  });

  it('fails (exit 1) and names the image when a stored blob no longer matches its digest, and still cleans up the rest', async () => {
    const lib = images.find((i) => i.repository === 'team/lib')!;
    const layer = lib.blobs.at(-1)!;
    const path = join(store, blobKey(layer.digest));
    const original = await readFile(path);
    await writeFile(path, Buffer.concat([original.subarray(0, original.length - 1), Buffer.from([original.at(-1)! ^ 0xff])]));
    try {
      const { exitCode, json } = await runCliJson<DrillReport>([
        'drill',
        '--from',
        store,
        '--registry',
        target.url,
        '--sample',
        'all',
        '--prefix',
        'drill-c/',
      ]);
      expect(exitCode).toBe(1);
      expect(json).toMatchObject({ ok: false, sampled: 3, passed: 2, failed: 1, cleanup: { deleted: 2, problems: [] } });
      const failed = json.images.find((i) => i.status === 'failed')!;
      expect(failed).toMatchObject({ repository: 'team/lib', tag: '2.0' });
      expect(failed.error).toContain(layer.digest.slice(7, 19));
    } finally {
      await writeFile(path, original);
    }
  });

  it('rejects a bad sample size or prefix with exit 2, and fails a drill of an empty store', async () => {
    expect((await runCli(['drill', '--from', store, '--registry', target.url, '--sample', '0'])).exitCode).toBe(2);
    const badPrefix = await runCli(['drill', '--from', store, '--registry', target.url, '--prefix', 'Drill']);
    expect(badPrefix.exitCode).toBe(2);
    expect(badPrefix.stderr).toContain('--prefix "Drill" is not a valid repository prefix');
    const empty = await runCli(['drill', '--from', await tempDir('drill-empty'), '--registry', target.url]);
    expect(empty.exitCode).toBe(1);
    expect(empty.stdout).toContain('the store holds no oci images to drill');
  });
});
