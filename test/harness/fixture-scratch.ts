// The fixtures' process-wide scratch space (OCI layouts, random files) and layout cache, removed when
// the process exits; dirs of fixture processes that are gone are swept.
import { rmSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './process.ts';

// The dir name carries the pid. Test workers are often killed without an 'exit' event, so each
// process also sweeps the dirs of fixture processes that are gone.
const ROOT_PATTERN = /^ecr-backup-fixtures-(\d+)-/;

async function sweepStaleRoots(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    const pid = Number(ROOT_PATTERN.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let rootPromise: Promise<string> | undefined;
async function root(): Promise<string> {
  rootPromise ??= (async () => {
    await sweepStaleRoots();
    const dir = await tempDir(`fixtures-${process.pid}`);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  return rootPromise;
}

let counter = 0;
export async function scratch(name: string): Promise<string> {
  const dir = join(await root(), `${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Removes every built layout now. Call it in afterAll: vitest's fork workers may be killed without
 * an 'exit' event (a later fixture process sweeps such leftovers, but only then).
 */
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
