// Content digests. Every byte stream that crosses a boundary (registry -> engine, engine -> store,
// store -> engine) passes through `verifyingStream`, which fails the stream before it ends when the
// size or sha256 is not what the descriptor promised, so the writer on the other side never commits.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { isDigest } from '../../schema/names.ts';

export type Digest = `sha256:${string}`;

export function sha256Digest(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new UnsupportedDigestError(digest);
  return digest.slice('sha256:'.length);
}

/** The base64 form S3 expects in ChecksumSHA256. */
export function digestBase64(digest: string): string {
  return Buffer.from(digestHex(digest), 'hex').toString('base64');
}

class UnsupportedDigestError extends Error {
  override name = 'UnsupportedDigestError';
  constructor(readonly digest: string) {
    super(`unsupported or malformed digest ${JSON.stringify(digest)} (only sha256 is supported)`);
  }
}

export class DigestMismatchError extends Error {
  override name = 'DigestMismatchError';
  constructor(
    readonly expected: { digest: string; size: number },
    readonly actual: { digest: string; size: number },
  ) {
    super(
      expected.size !== actual.size
        ? `size mismatch for ${expected.digest}: expected ${expected.size} bytes, got ${actual.size}`
        : `digest mismatch: expected ${expected.digest}, content hashes to ${actual.digest}`,
    );
  }
}

/** Throws DigestMismatchError unless `bytes` has the given digest (and size, when given). */
export function assertDigest(bytes: Uint8Array, expected: { digest: string; size?: number }): void {
  const actual = sha256Digest(bytes);
  const size = expected.size ?? bytes.byteLength;
  if (actual !== expected.digest || bytes.byteLength !== size) {
    throw new DigestMismatchError({ digest: expected.digest, size }, { digest: actual, size: bytes.byteLength });
  }
}

/**
 * A running sha256 and byte count: every hash over streamed content goes through one. Given the
 * `expected` digest and size, `update` throws as soon as more bytes than expected arrive (so a lying
 * peer cannot make us buffer or upload an unbounded body) and `verify` throws on a mismatch.
 */
export class ContentHash {
  private readonly hash = createHash('sha256');
  private result: Digest | undefined;
  size = 0;

  constructor(private readonly expected?: { digest: string; size: number }) {
    if (expected) digestHex(expected.digest);
  }

  update(chunk: Uint8Array): void {
    const size = this.size + chunk.length;
    if (this.expected && size > this.expected.size)
      throw new DigestMismatchError(this.expected, { digest: '(unknown, body too long)', size });
    this.hash.update(chunk);
    this.size = size;
  }

  /** The digest of everything hashed; hashing ends with the first call. */
  digest(): Digest {
    this.result ??= `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }

  /** Throws DigestMismatchError unless the content hashed is the expected one (no-op without `expected`). */
  verify(): void {
    if (!this.expected) return;
    const digest = this.digest();
    if (digest !== this.expected.digest || this.size !== this.expected.size)
      throw new DigestMismatchError(this.expected, { digest, size: this.size });
  }
}

/**
 * A pass-through stream that hashes and counts what flows through it (in `content`, not a `size`
 * property: lib-storage takes a body's `size` for its length). Given `expected`, it errors, instead
 * of ending, when the content does not match, and as soon as more bytes than expected arrive.
 */
export class DigestingStream extends Transform {
  readonly content: ContentHash;

  constructor(
    expected?: { digest: string; size: number },
    private readonly onBytes?: (count: number) => void,
  ) {
    super();
    this.content = new ContentHash(expected);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.content.update(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.content.verify();
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}

/** A `DigestingStream` that fails unless the content matches `expected`. */
export function verifyingStream(expected: { digest: string; size: number }, onBytes?: (count: number) => void): Transform {
  return new DigestingStream(expected, onBytes);
}
