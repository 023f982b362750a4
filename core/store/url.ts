// Store URLs: `s3://bucket[/prefix]` -> S3ObjectStore, `file:///abs/dir` or a plain path ->
// FileSystemObjectStore. Anything else is refused with a message that names the accepted forms.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackupStore, type BackupStoreOptions } from './backup-store.ts';
import { FileSystemObjectStore } from './filesystem.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3.ts';
import { errorText } from '../redact.ts';

export class StoreUrlError extends Error {
  override name = 'StoreUrlError';
}

const ACCEPTED = 'expected s3://bucket[/prefix], file:///absolute/dir, or a directory path';

export type OpenStoreOptions = Omit<S3ObjectStoreOptions, 'bucket' | 'prefix'> & {
  /**
   * The caller only reads (restore, list, verify, stats, report, prune): a local directory that does
   * not exist is then a typo, not an empty store. S3 needs no such check: a missing bucket fails loudly.
   */
  existing?: boolean;
};

export function openStore(url: string, options: OpenStoreOptions = {}): ObjectStore {
  const { existing, ...s3Options } = options;
  const directoryStore = (path: string): ObjectStore => {
    if (existing && !existsSync(path))
      throw new StoreUrlError(`no backup store at ${path}: the directory does not exist (a backup creates it)`);
    return new FileSystemObjectStore(path);
  };
  if (typeof url !== 'string' || url.trim() === '') throw new StoreUrlError(`empty store location; ${ACCEPTED}`);
  if (url.includes('\0')) throw new StoreUrlError(`store location contains NUL; ${ACCEPTED}`);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const m = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/i.exec(url);
    if (!m) throw new StoreUrlError(`invalid S3 store URL ${JSON.stringify(url)}; ${ACCEPTED}`);
    const bucket = m[1]!;
    const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
    try {
      return new S3ObjectStore({ ...s3Options, bucket, prefix });
    } catch (error) {
      throw new StoreUrlError(`invalid S3 store URL ${JSON.stringify(url)}: ${errorText(error)}`);
    }
  }
  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (error) {
      throw new StoreUrlError(`invalid file URL ${JSON.stringify(url)} (${errorText(error)}); ${ACCEPTED}`);
    }
    return directoryStore(path);
  }
  // A one-letter "scheme" is a Windows drive letter, not a URL; anything longer is an unsupported URL.
  if (scheme !== undefined && scheme.length > 1 && /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url)) {
    throw new StoreUrlError(`unsupported store URL scheme ${JSON.stringify(scheme)} in ${JSON.stringify(url)}; ${ACCEPTED}`);
  }
  return directoryStore(isAbsolute(url) ? url : resolve(url));
}

export function openBackupStore(url: string, options: BackupStoreOptions & { store?: OpenStoreOptions } = {}): BackupStore {
  const { store, ...backup } = options;
  return new BackupStore(openStore(url, store), backup);
}
