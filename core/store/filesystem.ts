// A local directory as an ObjectStore. A put writes `<root>/.tmp/<random>`, fsyncs it and renames it
// into place (a hard link when the key must not be replaced), then fsyncs the directory: a reader or
// a crash sees the old state or the complete object, never a partial file.
//
// Symbolic links inside the store are never followed: every directory between the root and a key
// must be a real directory (lstat), and files are opened with O_NOFOLLOW, so a link planted in the
// store cannot make a read or a write reach outside it. New files are 0600 and new directories 0700:
// backups are private whatever the umask.
import { randomUUID } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { type FileHandle, link, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { assertDigest, verifyingStream } from '../model/digest.ts';
import {
  type AbandonedWrites,
  assertKey,
  assertPrefix,
  InvalidKeyError,
  NotFoundError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.ts';
import { errorText } from '../redact.ts';

const TMP = '.tmp';
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** A symbolic link (or other non-directory) where the store needs a directory. */
class UnsafePathError extends Error {
  override name = 'UnsafePathError';
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

export class FileSystemObjectStore implements ObjectStore {
  readonly root: string;
  readonly description: string;
  /**
   * Directories under the root already checked to be real directories. Checked once per store object
   * (one CLI run or task): a link swapped in while a run is going is seen by the next run.
   */
  private readonly checkedDirs = new Set<string>();

  constructor(root: string) {
    this.root = resolve(root);
    this.description = pathToFileURL(this.root).href;
  }

  /** Maps a validated key to a path under the root. */
  private path(key: string): string {
    assertKey(key);
    if (key === TMP || key.startsWith(`${TMP}/`)) throw new InvalidKeyError(key, `${TMP}/ is reserved for in-progress writes`);
    const path = join(this.root, ...key.split('/'));
    // Defence in depth: assertKey already refuses every way out of the root.
    if (!path.startsWith(this.root + sep)) throw new InvalidKeyError(key, 'escapes the store root');
    return path;
  }

  /**
   * Checks (or, with `create`, makes with mode 0700) every directory between the root and `path`'s
   * parent: each must be a real directory, never a symbolic link. False when one is missing.
   */
  private async safeParent(path: string, create = false): Promise<boolean> {
    const parts = path
      .slice(this.root.length + 1)
      .split(sep)
      .slice(0, -1);
    if (create && !this.checkedDirs.has(this.root)) {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      this.checkedDirs.add(this.root);
    }
    let dir = this.root;
    for (const part of parts) {
      dir = join(dir, part);
      if (this.checkedDirs.has(dir)) continue;
      if (create)
        await mkdir(dir, { mode: 0o700 }).catch((error: unknown) => {
          if (errno(error) !== 'EEXIST') throw error;
        });
      const info = await lstat(dir).catch((error: unknown) => {
        if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
        throw error;
      });
      if (!info) return false;
      if (!info.isDirectory())
        throw new UnsafePathError(
          `${this.description}: ${dir.slice(this.root.length + 1)} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to follow it`,
        );
      this.checkedDirs.add(dir);
    }
    return true;
  }

  /** Opens a stored file for reading without following links; NotFoundError when absent. */
  private async openFile(key: string) {
    const path = this.path(key);
    if (!(await this.safeParent(path))) throw new NotFoundError(key, this.description);
    let handle: FileHandle;
    try {
      handle = await open(path, READ_FLAGS);
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') throw new NotFoundError(key, this.description);
      if (errno(error) === 'ELOOP') throw new UnsafePathError(`${this.description}: ${key} is a symbolic link; refusing to follow it`);
      throw error;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new NotFoundError(key, this.description);
    }
    return handle;
  }

  async get(key: string): Promise<Readable> {
    const handle = await this.openFile(key);
    return handle.createReadStream();
  }

  async getBytes(key: string): Promise<Buffer> {
    const handle = await this.openFile(key);
    try {
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<{ size: number; lastModified: Date } | undefined> {
    const path = this.path(key);
    try {
      if (!(await this.safeParent(path))) return undefined;
      const info = await lstat(path);
      return info.isFile() ? { size: info.size, lastModified: info.mtime } : undefined;
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
      throw error;
    }
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions = {}): Promise<PutResult> {
    let target: string;
    try {
      target = this.path(key);
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      throw error;
    }
    const tmpDir = join(this.root, TMP);
    const tmp = join(tmpDir, randomUUID());
    let committed = false;
    try {
      await this.safeParent(tmp, true);
      const handle = await open(tmp, 'wx', 0o600);
      try {
        const { expected } = options;
        if (Buffer.isBuffer(body)) {
          if (expected) assertDigest(body, expected);
          await handle.writeFile(body);
          await handle.sync();
        } else {
          // The verifier fails the pipeline before the end of a body that does not match, so nothing
          // is renamed into place. `flush` fsyncs the file before the stream closes the handle.
          const file = handle.createWriteStream({ flush: true });
          await (expected ? pipeline(body, verifyingStream(expected), file) : pipeline(body, file));
        }
      } finally {
        await handle.close();
      }
      const parent = dirname(target);
      await this.safeParent(target, true);
      let created = true;
      if (options.ifAbsent) {
        try {
          await link(tmp, target); // atomic create-if-absent
        } catch (error) {
          if (errno(error) === 'EEXIST') created = false;
          else if (errno(error) === 'EPERM' || errno(error) === 'ENOTSUP' || errno(error) === 'EOPNOTSUPP') {
            // A filesystem without hard links: check then rename (not atomic against a concurrent writer).
            if (
              await lstat(target).then(
                () => true,
                () => false,
              )
            )
              created = false;
            else {
              await rename(tmp, target);
              committed = true;
            }
          } else throw error;
        }
      } else {
        await rename(tmp, target);
        committed = true;
      }
      await syncDirectory(parent);
      return { created };
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      throw error;
    } finally {
      if (!committed) await unlink(tmp).catch(() => undefined);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    // The walk itself sees links as links (and skips them); the directories above it are checked here.
    if (dirKey && !(await this.safeParent(join(this.root, ...dirKey.split('/'), '_')))) return;
    yield* this.walk(dirKey, prefix);
  }

  /** Yields files under `dirKey` whose key starts with `prefix`, in ascending key order. */
  private async *walk(dirKey: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries: Dirent[];
    try {
      entries = await readdir(dirKey ? join(this.root, ...dirKey.split('/')) : this.root, { withFileTypes: true });
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return;
      throw error;
    }
    // A directory sorts as `name/`, which puts its keys exactly where a flat key listing would.
    const items = entries
      .filter((e) => (e.isDirectory() || e.isFile()) && !(dirKey === '' && e.name === TMP))
      .map((e) => ({ name: e.name, dir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const item of items) {
      const key = dirKey ? `${dirKey}/${item.name}` : item.name;
      if (item.dir) {
        const asDir = `${key}/`;
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) yield* this.walk(key, prefix);
      } else if (key.startsWith(prefix)) {
        const info = await lstat(join(this.root, ...key.split('/'))).catch((error: unknown) => {
          if (errno(error) === 'ENOENT') return undefined; // deleted while listing
          throw error;
        });
        if (info?.isFile()) yield { key, size: info.size, lastModified: info.mtime };
      }
    }
  }

  /**
   * Temp files of writes that were killed. A live write keeps its file's mtime current, so a file
   * untouched since `before` belongs to no running write.
   */
  async removeAbandonedWrites(before: Date, options: { dryRun?: boolean } = {}): Promise<AbandonedWrites> {
    const result: AbandonedWrites = { removed: [], failed: [] };
    const dir = join(this.root, TMP);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (errno(error) === 'ENOENT') return result;
      throw error;
    }
    for (const name of names.sort()) {
      const key = `${TMP}/${name}`;
      try {
        const info = await lstat(join(dir, name));
        if (!info.isFile() || info.mtime.getTime() >= before.getTime()) continue;
        if (!options.dryRun) await unlink(join(dir, name));
        result.removed.push({ key, since: info.mtime.toISOString(), bytes: info.size });
      } catch (error) {
        // Renamed into place or removed by its writer meanwhile: not garbage, nothing to report.
        if (errno(error) !== 'ENOENT') result.failed.push({ key, error: errorText(error) });
      }
    }
    return result;
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    try {
      if (!(await this.safeParent(path))) return;
      await unlink(path);
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return;
      throw error;
    }
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
