// Multipart part sizing for blobs of any size up to S3's 5 TiB object limit (no real upload).
import { describe, expect, it } from 'vitest';
import { MAX_OBJECT_BYTES, MAX_PART_BYTES, MAX_PARTS, uploadShape } from '../core/store/part-size.ts';
import { ObjectTooLargeError } from '../core/store/store-errors.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const configured = { partSize: 8 * MiB, queueSize: 4 };

describe('uploadShape', () => {
  it('keeps the configured part for blobs that fit 10,000 parts of it', () => {
    expect(uploadShape(10 * GiB, configured)).toEqual(configured);
    expect(uploadShape(undefined, configured)).toEqual(configured);
  });

  it('grows the part so a declared 100 GiB blob (over the ~78 GiB an 8 MiB part allows) fits 10,000 parts, in whole MiB, with memory bounded', () => {
    const size = 100 * GiB;
    expect(configured.partSize * MAX_PARTS).toBeLessThan(size);
    const shape = uploadShape(size, configured);
    expect(shape.partSize * MAX_PARTS).toBeGreaterThanOrEqual(size);
    expect(shape.partSize % MiB).toBe(0);
    expect(shape.partSize * shape.queueSize).toBeLessThanOrEqual(Math.max(configured.partSize * configured.queueSize, shape.partSize));
  });

  it('reaches the 5 TiB object limit within the 5 GiB part limit and refuses more', () => {
    const shape = uploadShape(MAX_OBJECT_BYTES, configured);
    expect(shape.partSize * MAX_PARTS).toBeGreaterThanOrEqual(MAX_OBJECT_BYTES);
    expect(shape.partSize).toBeLessThanOrEqual(MAX_PART_BYTES);
    expect(shape.queueSize).toBe(1);
    expect(() => uploadShape(MAX_OBJECT_BYTES + 1, configured)).toThrow(ObjectTooLargeError);
  });
});
