// moto server as the S3 and ECR control-plane emulator. The AWS SDK is pointed at it through the
// standard AWS_ENDPOINT_URL* variables and dummy credentials (see `awsEnv`).
import { ECRClient } from '@aws-sdk/client-ecr';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { freePort, startService, tempDir, type RunningService } from './process.ts';

export interface TestMoto extends RunningService {
  /** Environment for child processes (CLI, worker) and for `applyAwsEnv` in-process. */
  env: Record<string, string>;
  reset(): Promise<void>;
  /** In-process SDK client settings for moto: its endpoint, the region, dummy credentials. */
  clientConfig: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  /** A new S3 client on moto (path-style, as moto needs); the caller destroys it. */
  s3(): S3Client;
  /** A new ECR (control plane) client on moto; the caller destroys it. */
  ecr(): ECRClient;
}

/** The python that has moto: MOTO_PYTHON, the preinstalled pyenv one, or the venv scripts/setup.sh makes. */
function motoPython(): string {
  const candidates = [process.env.MOTO_PYTHON, '/root/.pyenv/versions/3.11.7/bin/python', '/opt/ecr-backup-ci/venv/bin/python'];
  return candidates.find((p): p is string => Boolean(p) && existsSync(p!)) ?? 'python3';
}

export async function startMoto(): Promise<TestMoto> {
  const dir = await tempDir('moto');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The pyenv shim's pid is not the server's; run the interpreter directly so stop() kills the server.
  const service = await startService({
    name: 'moto',
    command: motoPython(),
    args: ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)],
    logDir: dir,
    removeOnStop: dir,
    url,
    ready: async () => (await fetch(`${url}/`)).status === 200,
    timeoutMs: 60_000,
  });
  const clientConfig = { endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } };
  return {
    ...service,
    clientConfig,
    s3: () => new S3Client({ ...clientConfig, forcePathStyle: true }),
    ecr: () => new ECRClient(clientConfig),
    env: {
      AWS_ENDPOINT_URL: url,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    async reset() {
      await fetch(`${url}/moto-api/reset`, { method: 'POST' });
    },
  };
}

/** Points the in-process AWS SDK at moto; returns a function that restores the previous values. */
export function applyAwsEnv(env: Record<string, string>): () => void {
  const previous = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Creates an S3 bucket in moto (the store of a test). */
export async function createBucket(moto: TestMoto, bucket: string): Promise<void> {
  const s3 = moto.s3();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
}
