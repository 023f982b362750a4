// The hostile registry the hostile-input tests back up from (good repositories plus invalid and
// over-long names in _catalog) and a scratch directory, set up for a test file by useHostileRegistry().
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { HostileRegistry } from './hostile-registry.ts';

export const LONG_NAME = `${'a'.repeat(100)}/${'b'.repeat(155)}`; // 256 characters: ECR allows it

export let registry: HostileRegistry;
export let work: string;

/** Every path under `dir` (files and directories), relative. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    out.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  return out.sort();
}

/** Starts the registry and makes the scratch directory before the file's tests; call at top level. */
export function useHostileRegistry(): void {
  beforeAll(async () => {
    registry = new HostileRegistry();
    await registry.start();
    registry.tag('apps/one', 'v1', registry.addImage('one-v1').digest);
    registry.tag('apps/one', 'v2', registry.addImage('one-v2').digest);
    registry.tag('apps/two', 'v1', registry.addImage('two-v1').digest);
    registry.tag(LONG_NAME, 'v1', registry.addImage('long').digest);
    registry.extraCatalog.push('../../etc', 'UPPER/case', `${'c'.repeat(100)}/${'d'.repeat(156)}`);
    work = await mkdtemp(join(tmpdir(), 'ecr-backup-hostile-'));
  });

  afterAll(async () => {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  });
}
