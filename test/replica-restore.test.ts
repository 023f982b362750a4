// Restoring from the replica bucket (EcrBackup `replica` prop) when the primary is gone. moto does
// not perform S3 replication, so the test copies what the replication rules select (blobs/ and
// catalog/ under the prefix, not runs/) into a second bucket with CopyObject, then empties the
// primary (a region outage) and restores with the store URL pointing at the replica.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyObjectCommand, CreateBucketCommand, DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { motoService, registryService, useServices } from './harness/services.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage, pushMultiArchIndex } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { runCliJson } from './harness/cli.ts';
import type { RunReport } from '../schema/contract.ts';
import { REPLICATED_AREAS } from '../infra/store-replica.ts';

const { moto, source, target } = useServices({ moto: motoService(), source: registryService(), target: registryService() });
let s3: S3Client;
const images: PushedImage[] = [];

beforeAll(async () => {
  s3 = moto.s3();
  for (const bucket of ['primary', 'replica']) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  images.push(await pushImage(source, { repository: 'team/app', tag: '1.0', variant: 'replica-app' }));
  images.push(await pushMultiArchIndex(source, { repository: 'team/app', tag: 'multi', variant: 'replica-multi' }));
  images.push(await pushImage(source, { repository: 'team/lib', tag: '2.0', variant: 'replica-lib' }));
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    out.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

describe('the replica bucket', () => {
  it('serves a full, digest-exact restore after the primary is lost', async () => {
    const backup = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', 's3://primary/store/'], { env: moto.env });
    expect(backup.json.counts).toMatchObject({ images: 3, copied: 3, failed: 0 });

    // What the two replication rules copy: every object under store/blobs/ and store/catalog/.
    const replicated: string[] = [];
    for (const area of REPLICATED_AREAS) {
      for (const key of await keys('primary', `store/${area}`)) {
        await s3.send(new CopyObjectCommand({ Bucket: 'replica', Key: key, CopySource: `primary/${key}` }));
        replicated.push(key);
      }
    }
    expect(replicated.some((k) => k.startsWith('store/catalog/'))).toBe(true);
    expect(await keys('replica', 'store/runs/')).toEqual([]);
    // The primary region is gone.
    for (const key of await keys('primary', '')) await s3.send(new DeleteObjectCommand({ Bucket: 'primary', Key: key }));

    const verify = await runCliJson<{ problems: unknown[] }>(['verify', '--from', 's3://replica/store/'], { env: moto.env });
    expect(verify.exitCode).toBe(0);
    expect(verify.json.problems).toEqual([]);
    const restore = await runCliJson<RunReport>(['restore', '--from', 's3://replica/store/', '--registry', target.url], { env: moto.env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.counts).toMatchObject({ images: 3, copied: 3, failed: 0 });
    for (const image of images) {
      const restored = await inspectRaw(`${target.host}/${image.repository}:${image.tag}`);
      expect(restored.digest).toBe(image.digest);
    }
  });
});
