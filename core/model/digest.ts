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
 * A pass-through stream that hashes and counts what flows through it and errors, instead of ending,
 * when the content does not match `expected`. It also errors as soon as more bytes than expected
 * arrive, so a lying registry cannot make us buffer or upload an unbounded body.
 */
export function verifyingStream(expected: { digest: string; size: number }, onBytes?: (count: number) => void): Transform {
  digestHex(expected.digest);
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      size += chunk.length;
      if (size > expected.size) {
        callback(new DigestMismatchError(expected, { digest: '(unknown, body too long)', size }));
        return;
      }
      hash.update(chunk);
      onBytes?.(chunk.length);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      const digest = `sha256:${hash.digest('hex')}`;
      if (digest !== expected.digest || size !== expected.size) {
        callback(new DigestMismatchError(expected, { digest, size }));
      } else {
        callback();
      }
    },
  });
}
