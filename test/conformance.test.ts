// One ImageRepository suite (test/harness/conformance.ts), three implementations: the registry client
// against a real CNCF registry, the backup store on a directory, and the backup store on moto's S3.
import { join } from 'node:path';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import { S3ObjectStore } from '../core/store/s3.ts';
import { describeImageRepositoryConformance } from './harness/conformance.ts';
import { tempDir } from './harness/process.ts';
import { motoService, registryService, useServices } from './harness/services.ts';

const BUCKET = 'conformance';
const { registry } = useServices({ registry: registryService(), moto: motoService({ awsEnv: true, buckets: [BUCKET] }) });
let prefixes = 0;

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
