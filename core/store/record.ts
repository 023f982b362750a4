// Reading a catalog record: the one function every reader calls (restore, list, stats, verify, the
// backup's "unchanged" check). Whoever can write catalog/ must not be able to hide an image, pin a
// tag, or make prune or verify skip live data, so the KEY is the truth: a body that disagrees with
// its key (repository, tag, digest, time), is too large, is not JSON, does not match the schema,
// declares a format it does not carry, or is dated in the future is rejected with a reason. Readers
// that can go on (list, stats, restore planning) skip a rejected record and report it; `verify`
// reports it as a corrupt record.
import type { Readable } from 'node:stream';
import { isDigest } from '../../schema/names.ts';
import { MediaType } from '../model/manifest.ts';
import { CatalogRecord, parseCatalogKey, parseCompactTime, type CatalogKey } from './layout.ts';
import type { ObjectStore } from './object-store.ts';
import { ObjectTooLargeError } from './store-errors.ts';

/** Records are a few hundred bytes (an index with hundreds of platforms: tens of KiB). */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** How far a record's time may be ahead of this machine's clock (clock skew between writers). */
const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

const MANIFEST_TYPES = new Set<string>([MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList]);
const ARCHIVE_FILE = /^([^/]+)\/(.+)\/([^/]+)\.tar(?:\.gz|\.zst)?$/;

/** A catalog record that cannot be trusted; `key` names it, the message says why. */
export class InvalidRecordError extends Error {
  override name = 'InvalidRecordError';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`catalog record ${key} rejected: ${reason}`);
  }
}

/**
 * Reads a whole small object, refusing (and not buffering) more than `limit` bytes. One GET and no
 * HEAD: every record and manifest read goes through here, and the read itself stops at the cap.
 */
export async function readCapped(objects: ObjectStore, key: string, limit: number): Promise<Buffer> {
  const stream: Readable = await objects.get(key);
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      size += buffer.length;
      if (size > limit) throw new ObjectTooLargeError(`${key} is more than the ${limit} bytes allowed`);
      parts.push(buffer);
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(parts);
}

/** True when a record time (a key's or a body's) is later than `now` plus the allowed skew. */
export function isFutureTime(time: Date, now: Date): boolean {
  return time.getTime() > now.getTime() + MAX_CLOCK_SKEW_MS;
}

/**
 * Parses and checks one record against its key. Throws InvalidRecordError naming the key and the
 * first disagreement found.
 */
export function parseCatalogRecord(key: string | CatalogKey, bytes: Buffer, now: Date = new Date()): CatalogRecord {
  const parsedKey = typeof key === 'string' ? parseCatalogKey(key) : key;
  const name = typeof key === 'string' ? key : key.key;
  const reject = (reason: string): never => {
    throw new InvalidRecordError(name, reason);
  };
  if (!parsedKey) return reject('not a catalog record key');
  if (bytes.byteLength > MAX_RECORD_BYTES) reject(`${bytes.byteLength} bytes, more than the ${MAX_RECORD_BYTES} allowed`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return reject('not valid JSON');
  }
  const result = CatalogRecord.safeParse(raw);
  if (!result.success)
    return reject(
      `malformed (${result.error.issues
        .map((i) => `${i.path.join('.') || 'record'}: ${i.message}`)
        .join('; ')
        .slice(0, 300)})`,
    );
  const record = result.data;
  if (record.repository !== parsedKey.repository)
    reject(`its body names repository ${JSON.stringify(record.repository)}, its key ${parsedKey.repository}`);
  if (record.digest !== parsedKey.digest) reject(`its body names digest ${record.digest}, its key ${parsedKey.digest}`);
  if (parsedKey.kind === 'tag') {
    if (record.tag !== parsedKey.tag) reject(`its body names tag ${JSON.stringify(record.tag)}, its key ${parsedKey.tag}`);
    const keyTime = parseCompactTime(parsedKey.time);
    if (isFutureTime(keyTime, now)) reject(`dated ${keyTime.toISOString()}, in the future`);
    if (Date.parse(record.backedUpAt) !== keyTime.getTime())
      reject(`its body is dated ${record.backedUpAt}, its key ${keyTime.toISOString()}`);
  } else {
    if (record.tag !== undefined) reject('an untagged record names a tag');
    const time = Date.parse(record.backedUpAt);
    if (Number.isNaN(time)) reject(`backedUpAt ${JSON.stringify(record.backedUpAt)} is not a time`);
    if (isFutureTime(new Date(time), now)) reject(`dated ${record.backedUpAt}, in the future`);
  }
  if (!MANIFEST_TYPES.has(record.mediaType)) reject(`mediaType ${JSON.stringify(record.mediaType)} is not a manifest media type`);
  const format = record.format ?? 'oci';
  if (format === 'oci' && record.archive) reject('an oci record carries an archive');
  if (format === 'docker-archive') {
    if (!record.archive) return reject('a docker-archive record has no archive');
    const m = ARCHIVE_FILE.exec(record.archive.key);
    const label = m?.[1];
    if (
      !m ||
      parsedKey.kind !== 'tag' ||
      m[2] !== parsedKey.repository ||
      m[3] !== parsedKey.tag ||
      label === 'blobs' ||
      label === 'catalog' ||
      label === 'runs'
    ) {
      reject(`archive key ${JSON.stringify(record.archive.key)} is not <label>/${parsedKey.repository}/<tag>.tar for this record`);
    }
    if (!isDigest(record.archive.configDigest)) reject('archive configDigest is not a digest');
  }
  return record;
}

/** A record's JSON, unchecked, read with the record size cap (prune dates and marks from keys). */
export async function readRecordJson<T>(objects: ObjectStore, key: string): Promise<T> {
  const bytes = await readCapped(objects, key, MAX_RECORD_BYTES);
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new InvalidRecordError(key, 'not valid JSON');
  }
}
