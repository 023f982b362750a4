// The bundles are what the worker image and an installed CLI run; they must build and start on
// their own, without tsx or node_modules resolution of TypeScript sources.
import { execa } from 'execa';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './harness/process.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let outside: string;

beforeAll(async () => {
  await execa('npm', ['run', '--silent', 'build'], { cwd: ROOT });
  // Run the bundles from a directory with no node_modules, as the image does.
  outside = await tempDir('bundle');
  for (const file of ['ecr-backup.mjs', 'worker.mjs']) await copyFile(join(ROOT, 'dist', file), join(outside, file));
});

describe('bundles', () => {
  it('the CLI bundle runs on its own and lists its commands', async () => {
    const { stdout, exitCode } = await execa('node', [join(outside, 'ecr-backup.mjs'), '--help'], { cwd: outside });
    expect(exitCode).toBe(0);
    for (const command of ['backup', 'restore', 'list', 'verify', 'run', 'runs'])
      expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('the worker bundle runs on its own and refuses a bad environment with one structured log line', async () => {
    const result = await execa('node', [join(outside, 'worker.mjs')], {
      cwd: outside,
      env: { STORE_URL: 'ftp://nope', BATCH_KEY: '../x' },
      reject: false,
    });
    expect(result.exitCode).toBe(1);
    const line = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { level: string; error: { name: string; message: string } };
    expect(line).toMatchObject({ level: 'error', error: { name: 'ConfigurationError' } });
    expect(line.error.message).toMatch(/STORE_URL: .*BATCH_KEY: must be runs/);
  });

  it('npm pack ships the CLI bundle at its bin path, and it runs from the unpacked tarball (no install, no network)', async () => {
    const dir = await tempDir('pack');
    // The bundle was built above; prepack would build it again.
    const { stdout } = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    expect(packed!.files.map((f) => f.path).sort()).toEqual(['LICENSE', 'README.md', 'dist/ecr-backup.mjs', 'package.json']);
    await execa('tar', ['-xzf', join(dir, packed!.filename), '-C', dir]);
    const manifest = JSON.parse(await readFile(join(dir, 'package', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const run = await execa('node', [join(dir, 'package', manifest.bin['ecr-backup']!), '--help'], { cwd: dir });
    expect(run.stdout).toMatch(/^\s+backup\b/m);
  });
});
