// Tampering with a backup store behind its back, the same way for any backend: a case names the
// objects it overwrites, runs its checks, and the original bytes are put back afterwards, so the
// hostile-input cases are written once and run against every store kind.
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../../core/store/object-store.ts';

export interface TamperableStore {
  /** What `--from`/`--to` take for this store. */
  url: string;
  /** The store's own view (reads go through its validation). */
  objects: ObjectStore;
  /** Writes bytes at a key without the store's checks (disk write / raw PutObject). */
  write(key: string, bytes: Buffer): Promise<void>;
}

/** Every object of the store as `key sha256`, to show that a run changed nothing it should not. */
export async function fingerprint(objects: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const info of objects.list(prefix)) {
    out.push(
      `${info.key} ${createHash('sha256')
        .update(await objects.getBytes(info.key))
        .digest('hex')}`,
    );
  }
  return out.sort();
}

/** The record keys of one tag, oldest first. */
export async function recordKeys(objects: ObjectStore, repository: string, tag: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of objects.list(`catalog/${repository}/_tags/${tag}/`)) keys.push(info.key);
  return keys.sort();
}

/**
 * Overwrites (or creates) the given objects, runs `check`, then restores the originals and deletes
 * the created ones, so the next case sees the store as it was.
 */
export async function withTampered(store: TamperableStore, edits: Record<string, Buffer>, check: () => Promise<void>): Promise<void> {
  const originals = new Map<string, Buffer | undefined>();
  for (const key of Object.keys(edits)) originals.set(key, (await store.objects.head(key)) ? await store.objects.getBytes(key) : undefined);
  for (const [key, bytes] of Object.entries(edits)) await store.write(key, bytes);
  try {
    await check();
  } finally {
    for (const [key, bytes] of originals) {
      if (bytes) await store.write(key, bytes);
      else await store.objects.delete(key);
    }
  }
}
