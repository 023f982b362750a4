// The workflow's optional prune step (EcrBackup `prune` prop), run locally like test/workflow.test.ts:
// the synthesized ASL in a real interpreter, the real listing, summary and prune Lambda handlers,
// the real worker per Fargate task, moto for S3 and ECR's control plane, a real registry as its data plane.
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EcrBackupContext } from '../infra/context.ts';
import { ENV } from '../schema/environment.ts';
import { STATE } from '../schema/workflow-states.ts';
import type { PruneReport } from '../core/store/prune.ts';
import { openBackupStore } from '../core/store/url.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage } from './harness/fixtures.ts';
import { inEcr } from './harness/ecr-images.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution, LocalWorkflow } from './harness/local-workflow-types.ts';
import { evaluateRecordedCalls } from './harness/iam-calls.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { storeObjects } from '../core/store/store-objects.ts';
import { readJson } from '../core/store/object-store.ts';
import { runKeys } from '../schema/contract.ts';

const BUCKET = 'wf-prune';
const PREFIX = 'backups/';

const config: EcrBackupContext = {
  stackName: 'EcrBackupPruneTest',
  repositories: ['team/**'],
  restoreRepositories: ['team/**', 'restored/**'],
  schedule: null,
  prefix: PREFIX,
  imageFormat: 'oci',
  prune: { keepLast: 1 },
};

const { moto, registry } = useServices({
  moto: motoService({ awsEnv: true, buckets: [BUCKET], repositories: ['team/app'] }),
  registry: registryService(ECR_AUTH),
});
let workflow: LocalWorkflow;
let ecr: ECRClient;
let s3: S3Client;

beforeAll(async () => {
  ecr = moto.ecr();
  s3 = moto.s3();
  workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
});

afterAll(async () => {
  await cleanupFixtures();
});

async function pushToEcr(variant: string): Promise<PushedImage> {
  return inEcr(ecr, pushImage(registry, { repository: 'team/app', tag: '1.0', variant }), ECR_AUTH);
}

/** A run whose prune step has no grace period (the stack's default is the task timeout, 6 h). */
const run = (input: unknown) =>
  workflow.run(input, {
    bucket: BUCKET,
    lambdaEnv: { [ENV.ECR_REGISTRY_URL]: registry.url, PRUNE_GRACE_SECONDS: '0' },
    workerEnv: { [ENV.ECR_REGISTRY_URL]: registry.url },
  });
const explain = (e: LocalExecution) =>
  JSON.stringify({ status: e.status, error: e.error, cause: e.cause, states: e.statesEntered }, null, 1);

describe('the prune step of the workflow', () => {
  it('prunes after each backup run, aborts abandoned multipart uploads, passes a dry run on, and is skipped for restores', async () => {
    const first = await pushToEcr('prune-1');
    const one = await run({});
    expect(one.status, explain(one)).toBe('SUCCEEDED');
    expect(one.statesEntered.slice(-3)).toEqual([STATE.summarize, STATE.pruneAfterBackup, STATE.prune]);
    const prunePayload = one.lambdas.find((l) => l.state === STATE.prune)!.event as { runId: string; input: unknown; summary: unknown };
    expect(prunePayload).toEqual({
      runId: one.name,
      input: {},
      summary: { runId: one.name, counts: expect.any(Object), reportKey: `runs/${one.name}/report.json` },
    });
    expect(one.output).toMatchObject({
      runId: one.name,
      reportKey: `runs/${one.name}/report.json`,
      prune: { dryRun: false, recordsDropped: 0, blobsDeleted: 0 },
    });

    const second = await pushToEcr('prune-2');
    const dry = await run({ dryRun: true });
    expect(dry.status, explain(dry)).toBe('SUCCEEDED');
    expect(dry.output).toMatchObject({ prune: { dryRun: true, recordsDropped: 0 } });

    // A killed run's incomplete multipart upload (the grace is 0 here: it is abandoned at once).
    const abandoned = `${PREFIX}blobs/sha256/${'0'.repeat(64)}`;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: abandoned }));
    await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: abandoned, UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }));

    const two = await run({});
    expect(two.status, explain(two)).toBe('SUCCEEDED');
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).toEqual([]);
    const blobs = first.blobs.length + first.manifests.length;
    expect(two.output).toMatchObject({
      counts: { copied: 1 },
      prune: { dryRun: false, recordsDropped: 1, blobsDeleted: blobs, locked: 0, failed: 0, abandonedUploads: 1, sweep: 'done' },
    });
    const store = openBackupStore(`s3://${BUCKET}/${PREFIX}`);
    const pruneReport = await readJson<PruneReport>(storeObjects(store), runKeys.prune(two.name));
    expect(pruneReport.droppedRecords.map((r) => r.digest)).toEqual([first.digest]);
    expect(pruneReport.abandonedWrites).toEqual([{ key: `blobs/sha256/${'0'.repeat(64)}`, since: expect.any(String) }]);
    expect((await store.history('team/app')).tags).toEqual([{ tag: '1.0', records: [expect.objectContaining({ digest: second.digest })] }]);
    expect(await storeObjects(store).head(`blobs/sha256/${first.digest.slice(7)}`)).toBeUndefined();

    const restore = await run({ mode: 'restore', target: { repositoryPrefix: 'restored/' }, dryRun: true });
    expect(restore.status, explain(restore)).toBe('SUCCEEDED');
    expect(restore.statesEntered.slice(-3)).toEqual([STATE.summarize, STATE.pruneAfterBackup, STATE.done]);
    expect(restore.lambdas.some((l) => l.state === STATE.prune)).toBe(false);
    expect(Object.keys(restore.output as object).sort()).toEqual(['counts', 'reportKey', 'runId']);
  });
});

describe('IAM, proven offline (prune)', () => {
  it("allows every AWS call the components made in the prune runs, the prune Lambda's deletes included", async () => {
    const evaluation = await evaluateRecordedCalls(workflow);
    console.log(
      `IAM-checked AWS calls per role (workflow-prune.test.ts): ${JSON.stringify(evaluation.callsByRole)}; IAM requests: ${JSON.stringify(evaluation.requestsByRole)}`,
    );
    expect(evaluation.denied).toEqual([]);
    expect(evaluation.callsByRole.prune).toBeGreaterThan(0);
  });
});
