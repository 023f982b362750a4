// Multipart shape for an upload of known size. S3 allows at most 10,000 parts of 5 MiB to 5 GiB and
// objects up to 5 TiB, so a fixed 8 MiB part stops at ~78 GiB. The part grows with the blob (in
// whole MiB) just enough to fit 10,000 parts, and fewer parts are kept in flight so memory per
// upload stays near the configured partSize x queueSize (at least one part in flight).
import { ObjectTooLargeError } from './store-errors.ts';
const MiB = 1024 * 1024;
export const MAX_PARTS = 10_000;
export const MAX_PART_BYTES = 5 * 1024 * MiB;
export const MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;

export function uploadShape(
  size: number | undefined,
  configured: { partSize: number; queueSize: number },
): { partSize: number; queueSize: number } {
  if (size === undefined) return configured;
  if (size > MAX_OBJECT_BYTES) throw new ObjectTooLargeError(`${size} bytes exceeds S3's 5 TiB object limit`);
  const needed = Math.ceil(Math.ceil(size / MAX_PARTS) / MiB) * MiB;
  const partSize = Math.min(MAX_PART_BYTES, Math.max(configured.partSize, needed));
  const queueSize = Math.max(1, Math.min(configured.queueSize, Math.floor((configured.partSize * configured.queueSize) / partSize)));
  return { partSize, queueSize };
}
