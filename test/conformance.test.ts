// One ImageRepository suite (test/harness/conformance.ts), three implementations: the registry client
// against a real CNCF registry, the backup store on a directory, and the backup store on moto's S3.
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import { createS3Client, S3ObjectStore } from '../core/store/s3.ts';
import { describeImageRepositoryConformance } from './harness/conformance.ts';
import { applyAwsEnv, startMoto, type TestMoto } from './harness/moto.ts';
import { tempDir } from './harness/process.ts';
import { startRegistry, type TestRegistry } from './harness/registry.ts';

const BUCKET = 'conformance';
let registry: TestRegistry;
let moto: TestMoto;
let restoreEnv: () => void;
let prefixes = 0;

beforeAll(async () => {
  [registry, moto] = await Promise.all([startRegistry(), startMoto()]);
  restoreEnv = applyAwsEnv(moto.env);
  await createS3Client().send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  restoreEnv?.();
  await Promise.all([registry?.stop(), moto?.stop()]);
});

describeImageRepositoryConformance({
  name: 'registry (docker-registry 2.8)',
  // One registry for the suite: each test uses repositories of its own.
  open: async () => new RegistryEndpoint(registry.url),
});

describeImageRepositoryConformance({
  name: 'backup store on a directory',
  open: async () => new BackupStore(new FileSystemObjectStore(join(await tempDir('conformance'), 'store'))),
});

describeImageRepositoryConformance({
  name: 'backup store on S3 (moto)',
  open: async () => new BackupStore(new S3ObjectStore({ bucket: BUCKET, prefix: `store-${++prefixes}` })),
});
