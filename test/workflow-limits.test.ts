// The workflow's own limits and failure paths, run locally (harness/local-workflow.ts) with the
// real listing and summary Lambdas on moto. The Fargate tasks here are scripted (named so in each
// test): what is under test is the state machine's handling of many or failing children, not the
// worker. harness/distributed-map.ts gives the local Map AWS's 256 KiB output limit, its
// ResultWriter and its failure tolerance.
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { PutImageCommand } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EcrBackupContext } from '../infra/context.ts';
import { STATE } from '../schema/workflow-states.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution, LocalWorkflow } from './harness/local-workflow-types.ts';
import { useMoto } from './harness/services.ts';

const PREFIX = 'backups/';
const BATCHES = 80;
const config: EcrBackupContext = {
  stackName: 'EcrBackupLimitsTest',
  repositories: ['many/**'],
  schedule: null,
  prefix: PREFIX,
  batchMaxImages: 1,
  mapConcurrency: 10,
  failureTolerancePercent: 40,
};

const moto = useMoto({ awsEnv: true, buckets: ['lim-limit', 'lim-nowriter', 'lim-timeout', 'lim-tolerance'], repositories: ['many/app'] });
let workflow: LocalWorkflow;
let withoutResultWriter: LocalWorkflow;
let withoutBatchCatch: LocalWorkflow;
let s3: S3Client;
let blackhole: net.Server;
const sockets = new Set<net.Socket>();

/** A stopped task's DescribeTasks entry as ECS returns it: a few KB per failed task. */
function stoppedTask(batchKey: string): Record<string, never> {
  const container = {
    name: 'backup-worker',
    lastStatus: 'STOPPED',
    exitCode: 1,
    reason: 'OutOfMemoryError: Container killed due to memory usage',
    networkInterfaces: [{ attachmentId: 'a'.repeat(36), privateIpv4Address: '10.0.1.23' }],
  };
  const details = Array.from({ length: 16 }, (_, i) => ({ name: `detail-${i}`, value: `${'x'.repeat(120)}-${batchKey}` }));
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/cluster/${'f'.repeat(32)}`,
    lastStatus: 'STOPPED',
    stopCode: 'EssentialContainerExited',
    stoppedReason: 'Essential container in task exited',
    containers: [container],
    attachments: [{ type: 'ElasticNetworkInterface', details }],
  } as never;
}

beforeAll(async () => {
  s3 = moto.s3();
  const ecr = moto.ecr();
  for (let i = 0; i < BATCHES; i++) {
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${createHash('sha256').update(`c${i}`).digest('hex')}`,
        size: 10,
      },
      layers: [],
    });
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    await ecr.send(
      new PutImageCommand({
        repositoryName: 'many/app',
        imageTag: `t${i}`,
        imageManifest: manifest,
        imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
        imageDigest: digest,
      }),
    );
  }
  // An endpoint that accepts connections and never answers: a listing that hangs until its timeout.
  blackhole = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
  // The definition as it was before issue 9: no ResultWriter on the distributed Map.
  withoutResultWriter = await createLocalWorkflow({
    config,
    awsEnv: moto.env,
    transformAsl: (asl) => void delete asl.States[STATE.map]!.ResultWriter,
  });
  // Children that fail outright (no per-batch Catch), so the Map's own tolerance decides.
  withoutBatchCatch = await createLocalWorkflow({
    config,
    awsEnv: moto.env,
    transformAsl: (asl) => {
      const states = (asl.States[STATE.map]!.ItemProcessor as { States: Record<string, { Catch?: unknown }> }).States;
      delete states[STATE.backup]!.Catch;
    },
  });
}, 180_000);

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  blackhole?.close();
});

const explain = (e: LocalExecution) =>
  JSON.stringify({ status: e.status, error: e.error, cause: e.cause?.slice(0, 2000), states: e.statesEntered.slice(-6) });
const failing = () => ({ exitCode: 1 });

describe('distributed Map limits and failure paths (scripted Fargate tasks)', () => {
  it(`${BATCHES} failed batches with ECS causes: the children's outputs go to S3 and the summary still runs`, async () => {
    const execution = await workflow.run(
      {},
      { bucket: 'lim-limit', scriptedTask: ({ batchKey }) => ({ exitCode: 1, task: stoppedTask(batchKey) }) },
    );
    expect(execution.workers).toHaveLength(BATCHES);
    expect(execution.statesEntered.at(-1), explain(execution)).toBe(STATE.summarize);
    expect(execution.error, explain(execution)).toBe('RunFailedError');
    expect(execution.causeMessage).toMatch(new RegExp(`^${BATCHES} of ${BATCHES} image\\(s\\) failed`));
    // ResultPath null: the summary gets the state data untouched...
    expect(Object.keys(execution.lambdas.find((l) => l.state === STATE.summarize)!.event as object).sort()).toEqual([
      'listing',
      'mode',
      'runId',
    ]);
    // Two distributed Maps write results there (List shards, Copy batches): the copy Map's children carry `failed`.
    const manifests = (await listKeys('lim-limit', `${PREFIX}runs/map-results/`)).filter((k) => k.endsWith('/manifest.json'));
    const outputs = await Promise.all(
      manifests.map(
        async (k) =>
          JSON.parse(await read('lim-limit', k.replace('manifest.json', 'SUCCEEDED_0.json'))) as Array<{ failed?: boolean; cause: string }>,
      ),
    );
    const succeeded = outputs.find((o) => o.some((child) => 'failed' in child)) ?? [];
    expect(succeeded).toHaveLength(BATCHES); // ...and every child's output is in S3, the cause included
    expect(succeeded.every((o) => o.failed && o.cause.includes('EssentialContainerExited'))).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(succeeded))).toBeGreaterThan(256 * 1024);
  });

  it('without a ResultWriter the same run fails with States.DataLimitExceeded, which no Catch catches, and no report is written', async () => {
    const execution = await withoutResultWriter.run(
      {},
      { bucket: 'lim-nowriter', scriptedTask: ({ batchKey }) => ({ exitCode: 1, task: stoppedTask(batchKey) }) },
    );
    expect(execution.status).toBe('FAILED');
    expect(execution.error, explain(execution)).toBe('States.DataLimitExceeded');
    expect(execution.statesEntered).not.toContain(STATE.summarize);
    expect(await listKeys('lim-nowriter', `${PREFIX}runs/`).then((keys) => keys.filter((k) => k.endsWith('report.json')))).toEqual([]);
  });

  it("children failing outright within ToleratedFailurePercentage let the Map succeed; over it, the Map's Catch still leads to the summary", async () => {
    // 40 % tolerated: 20 of 80 failing children pass the Map, 60 of 80 do not.
    const within = await withoutBatchCatch.run(
      {},
      { bucket: 'lim-tolerance', scriptedTask: ({ batchKey }) => (batchNumber(batchKey) % 4 === 0 ? failing() : { exitCode: 0 }) },
    );
    expect(within.statesEntered, explain(within)).not.toContain(STATE.batchFailed);
    const summaryEvent = within.lambdas.find((l) => l.state === STATE.summarize)!.event as { mapFailed?: unknown };
    expect(summaryEvent.mapFailed).toBeUndefined();
    const over = await withoutBatchCatch.run(
      {},
      { bucket: 'lim-tolerance', scriptedTask: ({ batchKey }) => (batchNumber(batchKey) % 4 === 0 ? { exitCode: 0 } : failing()) },
    );
    const overEvent = over.lambdas.find((l) => l.state === STATE.summarize)!.event as { mapFailed?: { Error: string } };
    expect(overEvent.mapFailed, explain(over)).toMatchObject({ Error: 'States.ExceedToleratedFailureThreshold' });
    expect(over.error).toBe('RunFailedError');
  });

  it('a listing that times out is announced on the topic, and the execution fails with the timeout', async () => {
    const { port } = blackhole.address() as net.AddressInfo;
    const execution = await workflow.run(
      {},
      { bucket: 'lim-timeout', lambdaTimeoutMs: 2000, lambdaEnv: { AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` } },
    );
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('Sandbox.Timedout');
    expect(execution.statesEntered).toEqual([STATE.list, STATE.notifyListingFailed, STATE.listingFailed]);
    expect(execution.notifications).toEqual([
      expect.objectContaining({
        state: STATE.notifyListingFailed,
        subject: 'ecr-backup: a run failed before any work (listing)',
        message: expect.stringMatching(/failed while listing images: Sandbox\.Timedout: .*timed out/),
      }),
    ]);
  });
});

const batchNumber = (batchKey: string) => Number(/batches\/(\d+)\.json$/.exec(batchKey)?.[1] ?? -1);

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

async function read(bucket: string, key: string): Promise<string> {
  return await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString('utf8');
}
