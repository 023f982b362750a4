// The two ObjectStore backends store tests run the same suite against: moto's S3 (started for the
// test file by useStoreBackends) and a temporary directory, with ways to tamper and find leftovers.
import { CreateBucketCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { FileSystemObjectStore } from '../../core/store/filesystem.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { createS3Client, S3ObjectStore } from '../../core/store/s3.ts';
import { applyAwsEnv, startMoto, type TestMoto } from './moto.ts';
import { tempDir } from './process.ts';

export const MiB = 1024 * 1024;
export const BUCKET = 'ecr-backup-store-test';

/** Starts moto with the store bucket before the file's tests and stops it after; call at top level. */
export function useStoreBackends(): void {
  let moto: TestMoto;
  let restoreEnv: () => void;

  beforeAll(async () => {
    moto = await startMoto();
    restoreEnv = applyAwsEnv(moto.env);
    await createS3Client().send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    restoreEnv?.();
    await moto?.stop();
  });
}

export interface Backend {
  name: string;
  make(): Promise<ObjectStore>;
  /** Replaces an object's bytes behind the store's back (disk write / raw PutObject). */
  tamper(store: ObjectStore, key: string, bytes: Buffer): Promise<void>;
  /** Leftovers of interrupted writes: S3 multipart uploads, or files in <root>/.tmp. */
  leftovers(store: ObjectStore): Promise<string[]>;
}

let prefixCounter = 0;
export const backends: Backend[] = [
  {
    name: 'filesystem',
    make: async () => new FileSystemObjectStore(join(await tempDir('store'), 'root')),
    tamper: async (store, key, bytes) => writeFile(join((store as FileSystemObjectStore).root, ...key.split('/')), bytes),
    leftovers: async (store) => readdir(join((store as FileSystemObjectStore).root, '.tmp')).catch(() => []),
  },
  {
    name: 's3',
    // 5 MiB parts so a 6 MiB body already goes multipart.
    make: async () => new S3ObjectStore({ bucket: BUCKET, prefix: `run/p${++prefixCounter}`, partSize: 5 * MiB }),
    tamper: async (store, key, bytes) => {
      const s3 = store as S3ObjectStore;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.prefix + key, Body: bytes }));
    },
    leftovers: async (store) => {
      const s3 = store as S3ObjectStore;
      const out = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: s3.prefix }));
      return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
    },
  },
];

export async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}
