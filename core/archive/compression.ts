// Compression of docker-archive tars: none, gzip (node:zlib, on libuv's thread pool) or zstd (the
// `zstd` binary, multi-threaded; node 20 has no zstd). skopeo writes layers uncompressed into a
// docker-archive, so compression usually pays for itself in storage and upload time.
import type { Duplex } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { execa, type ResultPromise } from 'execa';
import type { ArchiveCompression } from '../../schema/contract.ts';

export interface Codec {
  stream: Duplex;
  /** The zstd subprocess, to stop on abort. */
  subprocess?: ResultPromise;
}

/** The stream that compresses for `compression`, or undefined for none. */
export function compressor(compression: ArchiveCompression): Codec | undefined {
  // Level 1: level 6 runs at ~25 MiB/s per core here (too slow for a 1-vCPU task); zstd is the
  // better choice for ratio and speed, gzip is there for tools that only know gzip.
  if (compression === 'gzip') return { stream: createGzip({ level: 1, chunkSize: 256 * 1024 }) };
  if (compression === 'zstd') return zstd(['-q', '-c', '-3', '-T0']);
  return undefined;
}

/** The stream that decompresses what `compressor(compression)` made, or undefined for none. */
export function decompressor(compression: ArchiveCompression): Codec | undefined {
  if (compression === 'gzip') return { stream: createGunzip({ chunkSize: 256 * 1024 }) };
  if (compression === 'zstd') return zstd(['-q', '-d', '-c']);
  return undefined;
}

function zstd(args: string[]): Codec {
  // The duplex errors (instead of ending) when zstd fails, so a broken stream is never committed.
  const subprocess = execa('zstd', args, { buffer: { stdout: false }, stderr: 'pipe', maxBuffer: { stderr: 64 * 1024 } });
  subprocess.catch(() => undefined);
  return { stream: subprocess.duplex(), subprocess };
}
