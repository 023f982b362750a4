// An S3 bucket (under an optional key prefix) as an ObjectStore.
//
// Uploads go through @aws-sdk/lib-storage's Upload with bounded memory (partSize x queueSize in
// flight): a body up to one part is sent as a single PutObject, a larger one as a multipart upload
// that is aborted (no object, no dangling upload) when the body errors or a part fails. Every upload
// carries SHA256 checksums: per part for multipart uploads, and for a single PutObject of known
// digest the digest itself, so S3 refuses bytes that do not hash to it. Throttling (SlowDown, 503) is
// retried by the SDK's adaptive retry mode.
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  paginateListObjectsV2,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { assertDigest, digestBase64, verifyingStream } from '../model/digest.ts';
import { mapLimited } from '../limiter.ts';
import { uploadShape } from './part-size.ts';
import { resumableStream } from '../resumable.ts';
import { idleTimeoutMs } from '../timeouts.ts';
import {
  type AbandonedWrites,
  assertKey,
  assertPrefix,
  NotFoundError,
  readAll,
  type DeleteManyResult,
  type GroupedEntry,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.ts';
import { errorText } from '../redact.ts';

const MiB = 1024 * 1024;

export interface S3ObjectStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket ('' or 'a/b'; a trailing '/' is added). */
  prefix?: string;
  /** A preconfigured client; otherwise one is built by `createS3Client`. */
  client?: S3Client;
  /**
   * Multipart part size in bytes (min 5 MiB, default 8 MiB); larger for a blob over 10,000 parts of
   * it (part-size.ts). Memory per upload is about partSize x (queueSize + 1).
   */
  partSize?: number;
  /** Parts uploaded in parallel per object (default 4). */
  queueSize?: number;
  /** Passed to createS3Client when no client is given. */
  clientOptions?: S3ClientOptions;
}

export interface S3ClientOptions {
  region?: string;
  /** Endpoint override; by default the SDK reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself. */
  endpoint?: string;
  /** Total attempts per request including retries (default 10, enough to ride out SlowDown bursts). */
  maxAttempts?: number;
  retryMode?: 'standard' | 'adaptive';
}

/**
 * An S3 client from the standard SDK configuration chain (env, profile, instance role). When an
 * endpoint override is present (option, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL) path-style addressing
 * is used, which S3-compatible servers such as moto or MinIO need.
 */
export function createS3Client(options: S3ClientOptions = {}): S3Client {
  const override = options.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  return new S3Client({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: override !== undefined && override !== '',
    followRegionRedirects: true,
    retryMode: options.retryMode ?? 'adaptive',
    maxAttempts: options.maxAttempts ?? 10,
    // Without a socket deadline a stalled S3 response (headers or body) would hold the run forever;
    // the SDK retries a timed-out request, and a body read that times out is resumed (getObject).
    requestHandler: { socketTimeout: idleTimeoutMs(), connectionTimeout: 10_000 },
  });
}

const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

class InvalidBucketError extends Error {
  override name = 'InvalidBucketError';
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket');
}

function isPreconditionFailed(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}

export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  /** '' or a prefix ending in '/'. */
  readonly prefix: string;
  readonly client: S3Client;
  readonly description: string;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(options: S3ObjectStoreOptions) {
    if (!BUCKET_PATTERN.test(options.bucket)) throw new InvalidBucketError(`invalid S3 bucket name ${JSON.stringify(options.bucket)}`);
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') assertKey(prefix);
    this.bucket = options.bucket;
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.client = options.client ?? createS3Client(options.clientOptions);
    this.partSize = options.partSize ?? 8 * MiB;
    this.queueSize = options.queueSize ?? 4;
    if (this.partSize < 5 * MiB) throw new RangeError(`partSize must be at least 5 MiB (S3 minimum), got ${this.partSize}`);
    if (!Number.isInteger(this.queueSize) || this.queueSize < 1) throw new RangeError(`queueSize must be a positive integer`);
    this.description = `s3://${this.bucket}/${this.prefix}`.replace(/\/$/, '');
  }

  private key(key: string): string {
    assertKey(key);
    return this.prefix + key;
  }

  /** Streams an object; a body that breaks is resumed with a Range GET (core/resumable.ts). */
  async get(key: string): Promise<Readable> {
    const Key = this.key(key);
    const open = async (offset: number) => {
      try {
        const out = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key, ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }),
        );
        return { body: out.Body as Readable, start: offset, size: out.ContentLength };
      } catch (error) {
        if (isNotFound(error)) throw new NotFoundError(key, this.description);
        throw error;
      }
    };
    const first = await open(0);
    return resumableStream(first.body, {
      ...(first.size !== undefined ? { size: first.size } : {}),
      reopen: open,
      context: `GET ${this.description}/${key}`,
    });
  }

  /** Reads a whole object, resuming a broken body like `get`. */
  async getBytes(key: string): Promise<Buffer> {
    return readAll(await this.get(key));
  }

  async head(key: string): Promise<{ size: number; lastModified: Date } | undefined> {
    const Key = this.key(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions = {}): Promise<PutResult> {
    let source: Readable | Buffer = body;
    let bodyError: unknown;
    try {
      const Key = this.key(key);
      const { expected } = options;
      const knownSize = Buffer.isBuffer(body) ? body.byteLength : expected?.size;
      const shape = uploadShape(knownSize, { partSize: this.partSize, queueSize: this.queueSize });
      if (Buffer.isBuffer(body)) {
        if (expected) assertDigest(body, expected);
      } else if (expected) {
        // The verifier errors before the end of a body that does not match, so the last part is
        // never produced and the upload is aborted instead of completed.
        const verifier = verifyingStream(expected);
        pipeline(body, verifier).catch((error: unknown) => (bodyError ??= error));
        source = verifier;
      }
      const params: PutObjectCommandInput = {
        Bucket: this.bucket,
        Key,
        Body: source,
        ...(options.contentType ? { ContentType: options.contentType } : {}),
        // A single PutObject carries the whole-object digest we already know, so S3 verifies it at no
        // hashing cost here. Multipart parts get no extra SHA256 checksum: their SigV4 payload hash
        // already makes S3 verify each part, and a third pass over every byte measured ~0.5 s CPU/GiB.
        ...(expected && knownSize !== undefined && knownSize <= shape.partSize
          ? { ChecksumAlgorithm: 'SHA256' as const, ChecksumSHA256: digestBase64(expected.digest) }
          : {}),
        ...(options.ifAbsent ? { IfNoneMatch: '*' } : {}),
      };
      const upload = new Upload({ client: this.client, params, ...shape, leavePartsOnError: false });
      try {
        await upload.done();
      } catch (error) {
        if (options.ifAbsent && isPreconditionFailed(error)) return { created: false };
        throw error;
      }
      return { created: true };
    } catch (error) {
      // Prefer the body's own failure (a digest mismatch, a reset) over what it caused downstream.
      const cause = bodyError instanceof Error ? bodyError : error;
      if (!Buffer.isBuffer(body)) body.destroy();
      if (source !== body) (source as Readable).destroy();
      throw cause;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertPrefix(prefix);
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: this.prefix + prefix })) {
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        yield {
          key: object.Key.slice(this.prefix.length),
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
          ...(object.StorageClass ? { storageClass: object.StorageClass } : {}),
        };
      }
    }
  }

  /** Keys grouped at the first `delimiter` after `prefix` (ListObjectsV2 Delimiter): one entry per group, not per key. */
  async *listGrouped(prefix: string, delimiter: string): AsyncIterable<GroupedEntry> {
    assertPrefix(prefix);
    const input = { Bucket: this.bucket, Prefix: this.prefix + prefix, Delimiter: delimiter };
    for await (const page of paginateListObjectsV2({ client: this.client }, input)) {
      for (const common of page.CommonPrefixes ?? []) if (common.Prefix) yield { group: common.Prefix.slice(this.prefix.length) };
      for (const object of page.Contents ?? []) if (object.Key) yield { key: object.Key.slice(this.prefix.length) };
    }
  }

  /**
   * Aborts incomplete multipart uploads under the store's prefix (left by killed runs) that were
   * started before `before` and have had no part uploaded since: a live upload, however long, keeps
   * adding parts.
   */
  async removeAbandonedWrites(before: Date, options: { dryRun?: boolean } = {}): Promise<AbandonedWrites> {
    const result: AbandonedWrites = { removed: [], failed: [] };
    // A loop, not a paginator: client-s3 has none for ListMultipartUploads (two markers).
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix || undefined, KeyMarker, UploadIdMarker }),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before.getTime()) continue;
        const key = upload.Key.slice(this.prefix.length);
        try {
          const latest = await this.latestPart(upload.Key, upload.UploadId);
          if (latest && latest.getTime() >= before.getTime()) continue;
          if (!options.dryRun)
            await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId }));
          result.removed.push({ key, since: (latest ?? upload.Initiated).toISOString() });
        } catch (error) {
          result.failed.push({ key, error: errorText(error) });
        }
      }
      [KeyMarker, UploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (KeyMarker !== undefined);
    return result;
  }

  /** When the upload's last part arrived (undefined: no part yet). */
  private async latestPart(Key: string, UploadId: string): Promise<Date | undefined> {
    let latest: Date | undefined;
    // Not paginateListParts: S3 and moto send NextPartNumberMarker on the last page too, and the
    // paginator, which ignores IsTruncated, would ask again (against moto: forever, pages 1, 0, 1, ...).
    let PartNumberMarker: string | undefined;
    do {
      const page = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key, UploadId, PartNumberMarker }));
      for (const part of page.Parts ?? []) if (part.LastModified && (!latest || part.LastModified > latest)) latest = part.LastModified;
      PartNumberMarker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (PartNumberMarker !== undefined);
    return latest;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
  }

  /**
   * DeleteObjects, 1000 keys a request, without version ids: on a versioned bucket each delete adds a
   * delete marker (reported per key) and the data stays as a noncurrent version until the bucket's
   * lifecycle expires it. When the bucket has Object Lock, each key is HEADed first and an object
   * under retention or legal hold is left in place and reported as locked (reading the lock needs
   * s3:GetObjectRetention / s3:GetObjectLegalHold; without them S3 omits it and the delete only adds
   * a marker). A version S3 itself refuses to delete for its lock is reported as locked too.
   */
  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const result: DeleteManyResult = { deleted: [], locked: [], failed: [] };
    let pending = [...new Set(keys)];
    for (const key of pending) assertKey(key);
    if (pending.length === 0) return result;
    if (await this.objectLockEnabled()) {
      const now = Date.now();
      const locks = await mapLimited(pending, 16, async (key): Promise<string | undefined> => {
        try {
          const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
          if (out.ObjectLockLegalHoldStatus === 'ON') return 'retained by Object Lock (legal hold)';
          const until = out.ObjectLockRetainUntilDate;
          if (out.ObjectLockMode && until && until.getTime() > now)
            return `retained by Object Lock (${out.ObjectLockMode}) until ${until.toISOString()}`;
          return undefined;
        } catch (error) {
          if (isNotFound(error)) return undefined;
          throw error;
        }
      });
      pending = pending.filter((key, i) => {
        if (locks[i] === undefined) return true;
        result.locked.push({ key, detail: locks[i] });
        return false;
      });
    }
    for (let i = 0; i < pending.length; i += 1000) {
      const chunk = pending.slice(i, i + 1000);
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: chunk.map((key) => ({ Key: this.key(key) })), Quiet: false } }),
      );
      const relative = (key: string | undefined) => (key ?? '').slice(this.prefix.length);
      for (const deleted of out.Deleted ?? [])
        result.deleted.push({ key: relative(deleted.Key), ...(deleted.DeleteMarker ? { deleteMarker: true } : {}) });
      for (const error of out.Errors ?? []) {
        const detail = `${error.Code ?? 'Error'}: ${error.Message ?? ''}`.trim();
        if (/object ?lock|retention|legal hold/i.test(error.Message ?? ''))
          result.locked.push({ key: relative(error.Key), detail: `retained by Object Lock (${detail})` });
        else result.failed.push({ key: relative(error.Key), error: detail });
      }
    }
    return result;
  }

  private lockEnabled?: Promise<boolean>;

  /** Whether the bucket has Object Lock; when that cannot be read, assume it may (and check each key). */
  private objectLockEnabled(): Promise<boolean> {
    this.lockEnabled ??= this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket })).then(
      (out) => out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled',
      (error: unknown) => !/ObjectLockConfigurationNotFound/i.test((error as { name?: string; Code?: string })?.name ?? ''),
    );
    return this.lockEnabled;
  }
}
