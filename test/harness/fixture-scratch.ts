// The fixtures' scratch space (OCI layouts, random files) and layout cache for one test file. The
// root is a tempDir, so it goes when the file is done (test/harness/temp-cleanup.ts) at the latest.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './process.ts';

let rootPromise: Promise<string> | undefined;
async function root(): Promise<string> {
  rootPromise ??= tempDir('fixtures');
  return rootPromise;
}

let counter = 0;
export async function scratch(name: string): Promise<string> {
  const dir = join(await root(), `${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Removes every built layout now (a file that builds many calls it in afterAll to free the disk early). */
export async function cleanupFixtures(): Promise<void> {
  const dir = rootPromise ? await rootPromise : undefined;
  rootPromise = undefined;
  layoutCache.clear();
  if (dir) await rm(dir, { recursive: true, force: true });
}

const layoutCache = new Map<string, Promise<unknown>>();

/** Runs `build` once per key in this process; later callers get the same layout. */
export function cached<T>(key: string, build: () => Promise<T>): Promise<T> {
  let hit = layoutCache.get(key) as Promise<T> | undefined;
  if (!hit) {
    hit = build();
    layoutCache.set(key, hit);
    hit.catch(() => layoutCache.delete(key));
  }
  return hit;
}
