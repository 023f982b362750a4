// The one thing a storage backend implements: a flat key -> bytes map with atomic, all-or-nothing
// puts. Everything above it (the backup layout, the catalog, verification, run reports) is written
// once against this interface, so S3 and a local directory behave identically.
//
// Keys are relative, '/'-separated, and checked by `assertKey` in every backend: no empty, '.' or
// '..' segment, no leading '/', no backslash, no NUL. The backend maps them under its own root
// (a directory, or a bucket prefix).
import type { Readable } from 'node:stream';
import { errorText } from '../redact.ts';

export interface ObjectInfo {
  /** The key relative to the store root. */
  key: string;
  size: number;
  lastModified: Date;
  /** S3: the object's storage class (STANDARD, GLACIER_IR, ...); absent for a directory. */
  storageClass?: string;
}

export interface PutOptions {
  /**
   * The sha256 digest (`sha256:<hex>`) and exact size the content must have. When given, the backend
   * checks what it writes (`assertDigest` / `verifyingStream`) and commits nothing on a mismatch; S3
   * additionally verifies single-part uploads itself, and the size lets it choose a single PUT.
   */
  expected?: { digest: string; size: number };
  /** Do not replace an existing object; the put then reports `created: false` and writes nothing. */
  ifAbsent?: boolean;
  contentType?: string;
}

export interface PutResult {
  /** False only when `ifAbsent` was set and the key already existed. */
  created: boolean;
}

export interface ObjectStore {
  /** `s3://bucket/prefix` or `file:///dir`, for logs and errors. */
  readonly description: string;
  /** An S3 store's bucket, which the workflow's Map ItemReaders read directly (RunFiles.inBucket). */
  readonly bucket?: string;
  /** An S3 store's key prefix in `bucket` (empty or ending in `/`). */
  readonly prefix?: string;
  /** Streams an object; rejects with NotFoundError when there is none. */
  get(key: string): Promise<Readable>;
  /** Reads a whole (small) object; rejects with NotFoundError when there is none. */
  getBytes(key: string): Promise<Buffer>;
  head(key: string): Promise<{ size: number; lastModified: Date } | undefined>;
  /**
   * Writes an object atomically: readers see the old state or the complete new object, never a part.
   * If `body` errors (or the content does not match `expected`), nothing is committed and the
   * promise rejects with that error. A stream body is always consumed or destroyed.
   */
  put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<PutResult>;
  /** Every object whose key starts with `prefix` (a plain string prefix), in ascending key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Like `list`, but keys that contain `delimiter` after `prefix` come back once per group (up to and
   * including the delimiter), as S3's ListObjectsV2 Delimiter does. Optional: `listGrouped` below
   * groups a plain listing for a backend without it.
   */
  listGrouped?(prefix: string, delimiter: string): AsyncIterable<GroupedEntry>;
  /** Deletes an object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Deletes many objects (S3: DeleteObjects, 1000 keys a request) and reports each key's outcome
   * instead of throwing for one. Optional: `deleteKeys` falls back to `delete` one key at a time.
   */
  deleteMany?(keys: readonly string[]): Promise<DeleteManyResult>;
  /**
   * Removes what interrupted writes left behind (a directory's `.tmp/` files, S3's incomplete
   * multipart uploads) that has not been written to since `before`; `dryRun` only lists it.
   * Optional: a backend without such leftovers does not implement it.
   */
  removeAbandonedWrites?(before: Date, options?: { dryRun?: boolean }): Promise<AbandonedWrites>;
}

/** A `listGrouped` entry: a group of keys (`group`, ending with the delimiter) or a key outside any group. */
export type GroupedEntry = { group: string } | { key: string };

/** `store.listGrouped`, or a plain listing grouped here (every key is then listed). */
export async function* listGrouped(store: ObjectStore, prefix: string, delimiter: string): AsyncIterable<GroupedEntry> {
  if (store.listGrouped) {
    yield* store.listGrouped(prefix, delimiter);
    return;
  }
  const seen = new Set<string>();
  for await (const object of store.list(prefix)) {
    const at = object.key.indexOf(delimiter, prefix.length);
    if (at < 0) {
      yield { key: object.key };
      continue;
    }
    const group = object.key.slice(0, at + delimiter.length);
    if (!seen.has(group)) yield { group };
    seen.add(group);
  }
}

export interface AbandonedWrites {
  /** Removed (dry run: would be): the temp file or the upload's key, when it was started or last written, bytes when known. */
  removed: { key: string; since: string; bytes?: number }[];
  failed: { key: string; error: string }[];
}

export interface DeleteManyResult {
  /**
   * Keys that are gone from the store. `deleteMarker`: S3 with versioning hid the object behind a
   * delete marker; its data stays as a noncurrent version until the bucket's lifecycle expires it.
   */
  deleted: { key: string; deleteMarker?: boolean }[];
  /** Keys S3 Object Lock retains (retention period or legal hold): left in place, not an error. */
  locked: { key: string; detail: string }[];
  /** Keys that could not be deleted for any other reason. */
  failed: { key: string; error: string }[];
}

/** `store.deleteMany`, or one `delete` per key for a backend without it. */
export async function deleteKeys(store: ObjectStore, keys: readonly string[]): Promise<DeleteManyResult> {
  if (store.deleteMany) return store.deleteMany(keys);
  const result: DeleteManyResult = { deleted: [], locked: [], failed: [] };
  for (const key of keys) {
    try {
      await store.delete(key);
      result.deleted.push({ key });
    } catch (error) {
      result.failed.push({ key, error: errorText(error) });
    }
  }
  return result;
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(
    readonly key: string,
    where: string,
  ) {
    super(`${key} not found in ${where}`);
  }
}

export class InvalidKeyError extends Error {
  override name = 'InvalidKeyError';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`invalid store key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** Throws InvalidKeyError unless `key` is a safe relative key (see the file comment). */
export function assertKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError(String(key), 'empty');
  if (key.length > 1024) throw new InvalidKeyError(key, 'longer than 1024 characters');
  checkSegments(key, key.split('/'));
}

/** Like assertKey, but for a list prefix: may be empty, may end with '/' or stop mid-segment. */
export function assertPrefix(prefix: string): void {
  if (prefix === '') return;
  const segments = prefix.split('/');
  // The last segment of a prefix may be empty ('a/b/') or partial ('a/b/v1'); '.' and '..' are still refused.
  const last = segments[segments.length - 1];
  if (last === '') segments.pop();
  checkSegments(prefix, segments);
}

function checkSegments(key: string, segments: string[]): void {
  if (key.includes('\0')) throw new InvalidKeyError(key, 'contains NUL');
  if (key.includes('\\')) throw new InvalidKeyError(key, 'contains a backslash');
  if (key.startsWith('/')) throw new InvalidKeyError(key, 'is absolute');
  for (const segment of segments) {
    if (segment === '') throw new InvalidKeyError(key, 'has an empty path segment');
    if (segment === '.' || segment === '..') throw new InvalidKeyError(key, `has a ${JSON.stringify(segment)} segment`);
  }
}

/** Reads a stream to the end into one Buffer. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Stores `value` as pretty JSON (run reports, batches, catalog records). */
export async function writeJson(store: ObjectStore, key: string, value: unknown, options: { ifAbsent?: boolean } = {}): Promise<PutResult> {
  const body = Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
  return store.put(key, body, { ...options, contentType: 'application/json' });
}

/** Reads JSON written by writeJson; NotFoundError when absent, a SyntaxError naming the key when invalid. */
export async function readJson<T = unknown>(store: ObjectStore, key: string): Promise<T> {
  const bytes = await store.getBytes(key);
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (error) {
    throw new SyntaxError(`${store.description}/${key} is not valid JSON: ${errorText(error)}`);
  }
}
