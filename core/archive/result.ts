// The fields every archive backup or restore result starts with (the copy engine's ImageResult shape).
import type { ImageResult } from '../../schema/contract.ts';
import { errorText } from '../redact.ts';

type ResultBase = { repository: string; targetRepository?: string; tag?: string; digest?: string };

export function resultBase(base: ResultBase, started: number) {
  return {
    repository: base.repository,
    ...(base.targetRepository && base.targetRepository !== base.repository ? { targetRepository: base.targetRepository } : {}),
    ...(base.tag !== undefined ? { tag: base.tag } : {}),
    ...(base.digest !== undefined ? { digest: base.digest } : {}),
    durationMs: Math.round(performance.now() - started),
  };
}

/** A copied archive: one blob (the archive) of `archive.size` bytes moved, nothing deduplicated. */
export function copiedResult(base: ResultBase, started: number, archive: NonNullable<ImageResult['archive']>): ImageResult {
  return {
    ...resultBase(base, started),
    status: 'copied',
    blobsCopied: 1,
    bytesCopied: archive.size,
    bytesDeduplicated: 0,
    archive,
  };
}

/** A failed archive backup or restore: nothing copied, the (redacted) error after `repository:reference`. */
export function failedResult(base: ResultBase, started: number, reference: string, error: unknown): ImageResult {
  return {
    ...resultBase(base, started),
    status: 'failed',
    blobsCopied: 0,
    bytesCopied: 0,
    bytesDeduplicated: 0,
    error: `${base.repository}:${reference}: ${errorText(error)}`,
  };
}
