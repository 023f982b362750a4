// `stats` cost estimate by storage class, on moto S3 (which keeps the storage class a PUT names).
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BackupStore } from '../core/store/backup-store.ts';
import { STORAGE_PRICES_USD_PER_GB_MONTH, storageCost } from '../core/store/cost.ts';
import { createS3Client, S3ObjectStore } from '../core/store/s3.ts';
import { storeStats } from '../core/store/stats.ts';
import { useMoto } from './harness/services.ts';

useMoto({ awsEnv: true });
describe('storage cost estimate', () => {
  it('prices each storage class at its named list price', () => {
    const GB = 1024 ** 3;
    const { classes, monthlyUsd } = storageCost(
      new Map([
        ['STANDARD', 100 * GB],
        ['GLACIER_IR', 1000 * GB],
        ['REDUCED_REDUNDANCY', GB],
      ]),
    );
    expect(classes.find((c) => c.storageClass === 'STANDARD')?.monthlyUsd).toBeCloseTo(100 * STORAGE_PRICES_USD_PER_GB_MONTH.STANDARD!);
    expect(classes.find((c) => c.storageClass === 'GLACIER_IR')?.monthlyUsd).toBeCloseTo(4);
    expect(classes.find((c) => c.storageClass === 'REDUCED_REDUNDANCY')?.monthlyUsd).toBeNull();
    expect(monthlyUsd).toBeCloseTo(2.3 + 4);
  });

  it("stats reads each blob's storage class from the listing (no per-object request)", async () => {
    const client = createS3Client();
    await client.send(new CreateBucketCommand({ Bucket: 'cost-test' }));
    const put = async (bytes: Buffer, storageClass?: 'GLACIER_IR') => {
      const hex = createHash('sha256').update(bytes).digest('hex');
      await client.send(
        new PutObjectCommand({
          Bucket: 'cost-test',
          Key: `s/blobs/sha256/${hex}`,
          Body: bytes,
          ...(storageClass ? { StorageClass: storageClass } : {}),
        }),
      );
    };
    await put(Buffer.alloc(3000, 1));
    await put(Buffer.alloc(5000, 2), 'GLACIER_IR');
    const stats = await storeStats(new BackupStore(new S3ObjectStore({ bucket: 'cost-test', prefix: 's', client })));
    expect(stats.totals.storageClasses.map((c) => [c.storageClass, c.bytes])).toEqual([
      ['GLACIER_IR', 5000],
      ['STANDARD', 3000],
    ]);
    expect(stats.totals.monthlyStorageUsd).toBeGreaterThan(0);
  });
});
