// Reading a docker-archive back from the store for a restore. The stored object is hashed against
// its record BEFORE anything decompresses it: a tampered `.tar.zst` of the recorded size once
// expanded past 6 GiB on disk before the sha256 check caught it. Decompression is then capped too,
// so a record and tar rewritten together still cannot fill the worker's disk.
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExecaError } from 'execa';
import type { ArchiveCompression } from '../../schema/contract.ts';
import { verifyingStream } from '../model/digest.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { errorText } from '../redact.ts';
import { decompressor } from './compression.ts';
import { ArchiveError } from './settings.ts';
import { stop, toolError } from './skopeo.ts';

/** Default cap on a decompressed archive: more than any image a Fargate task's disk can restore. */
const MAX_DECOMPRESSED_BYTES = 64 * 1024 ** 3;

export interface StoredArchive {
  key: string;
  sha256: string;
  size: number;
  compression: ArchiveCompression;
}

/**
 * Writes the archive's tar into `dir` and returns its path: the stored bytes are verified (sha256
 * and size) into a file first, then decompressed from that file, at most `maxBytes` of output.
 */
export async function unpackArchive(
  store: Pick<BackupStore, 'openArchive'>,
  archive: StoredArchive,
  dir: string,
  options: { maxBytes?: number; onBytes?: (count: number) => void } = {},
): Promise<string> {
  const stored = join(dir, archive.compression === 'none' ? 'image.tar' : 'image.stored');
  try {
    await pipeline(
      await store.openArchive(archive.key),
      verifyingStream({ digest: archive.sha256, size: archive.size }, options.onBytes),
      createWriteStream(stored, { mode: 0o600 }),
    );
  } catch (error) {
    await rm(stored, { force: true });
    throw new ArchiveError(`${archive.key}: ${errorText(error)}`);
  }
  const codec = decompressor(archive.compression);
  if (!codec) return stored;
  const file = join(dir, 'image.tar');
  const maxBytes = options.maxBytes ?? MAX_DECOMPRESSED_BYTES;
  let written = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      written += chunk.length;
      if (written > maxBytes)
        callback(new ArchiveError(`${archive.key} decompresses to more than ${maxBytes} bytes; refusing to unpack it`));
      else callback(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(stored), codec.stream, cap, createWriteStream(file, { mode: 0o600 }));
  } catch (error) {
    await rm(file, { force: true });
    if (error instanceof ArchiveError) throw error;
    throw error instanceof ExecaError
      ? toolError(error, `decompressing ${archive.key}`)
      : new ArchiveError(`${archive.key}: ${errorText(error)}`);
  } finally {
    await stop(codec.subprocess);
    await rm(stored, { force: true });
  }
  return file;
}
