// When the run report cannot be stored, the run's outcome is still printed and the exit code says so.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage } from './harness/fixtures.ts';
import { tempDir } from './harness/process.ts';
import { useRegistry } from './harness/services.ts';

const source = useRegistry();

beforeAll(async () => {
  await pushImage(source, { repository: 'rf/app', tag: 'v1', variant: 'report-failure' });
}, 60_000);

afterAll(async () => {
  await cleanupFixtures();
});

it('a report that cannot be written still prints the summary and --json, and exits 3 (images done, report not stored)', async () => {
  const store = await tempDir('report-failure');
  // A file where the runs/ directory should be: blobs and records go in, the report cannot.
  await writeFile(join(store, 'runs'), 'not a directory');
  const result = await runCliJson<RunReport & { reportError?: string }>([
    'backup',
    '--registry',
    source.url,
    '--to',
    store,
    '--repositories',
    'rf/app',
  ]);
  expect(result.exitCode).toBe(3);
  expect(result.json.counts).toMatchObject({ images: 1, copied: 1, failed: 0 });
  expect(result.json.reportError).toMatch(/run report could not be written to file:\/\/.*\/runs\/cli-/);
  expect(result.stderr).toContain('run report could not be written');
  const text = await runCli(['backup', '--registry', source.url, '--to', store, '--repositories', 'rf/app']);
  expect(text.exitCode).toBe(3);
  expect(text.stdout).toMatch(/1 image\(s\) .*0 copied, 1 unchanged, 0 failed/);
});
