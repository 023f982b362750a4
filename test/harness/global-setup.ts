// Vitest global setup: bundles the CLI once per run into a temporary directory, so every test that
// starts `ecr-backup` runs the bundle (~0.75 s per start) instead of compiling TypeScript through
// tsx on each start (~2.3 s). It builds into its own directory, never the repo's dist/, which
// test/build.test.ts rebuilds concurrently. It is built once per run: under `npx vitest` (watch
// mode), restart vitest after changing cli/ or core/.
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the bundled CLI (dist-style `ecr-backup.mjs`) built for this test run. */
    cliBundle: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const outdir = await mkdtemp(join(tmpdir(), 'ecr-backup-cli-'));
  await execa('npx', ['tsx', 'scripts/build.ts', '--outdir', outdir, 'ecr-backup'], { cwd: ROOT }).catch(async (error: unknown) => {
    await rm(outdir, { recursive: true, force: true });
    throw error;
  });
  project.provide('cliBundle', join(outdir, 'ecr-backup.mjs'));
  return () => rm(outdir, { recursive: true, force: true });
}
