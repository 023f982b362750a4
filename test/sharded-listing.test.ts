// The sharded backup listing, end to end in the synthesized workflow (aws-local-stepfunctions, the
// real listing/summary handlers and worker; moto for S3 and the ECR control plane, a real registry
// for ECR's data plane): one shard per repository, tags and whole repositories deleted at the
// source reaching the run report through the summary Lambda, the settings cadence, and a restore
// `--as-of` before a repository's deletion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchDeleteImageCommand,
  CreateRepositoryCommand,
  DeleteRepositoryCommand,
  type ECRClient,
  PutLifecyclePolicyCommand,
} from '@aws-sdk/client-ecr';
import { pushEcrImages, registerInEcr } from './harness/ecr-images.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution, LocalWorkflow, RunOptions } from './harness/local-workflow-types.ts';
import { evaluateRecordedCalls } from './harness/iam-calls.ts';
import { ListingOutput, RunReport, runKeys } from '../schema/contract.ts';
import { ShardedListingPlan } from '../schema/listing-shards.ts';
import { ENV } from '../schema/environment.ts';
import { STATE } from '../schema/workflow-states.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import { openBackupStore } from '../core/store/url.ts';
import { deletedRepositoryKey } from '../core/store/stored-repositories.ts';
import { storeObjects } from '../core/store/store-objects.ts';

const PREFIX = 'sharded/';
const BUCKET = 'wf-sharded';

const config: EcrBackupContext = {
  stackName: 'EcrBackupShardedListingTest',
  repositories: ['team/**'],
  restoreRepositories: ['team/**', 'restored/**'],
  schedule: null,
  prefix: PREFIX,
  mapConcurrency: 2,
  batchMaxImages: 10,
  imageFormat: 'oci',
  // One repository per shard: three shards for three repositories.
  listingShardSize: 1,
};

const { moto, ecrRegistry, freshRegistry } = useServices({
  moto: motoService({ awsEnv: true, buckets: [BUCKET], repositories: ['team/a', 'team/b', 'team/c'] }),
  ecrRegistry: registryService(ECR_AUTH),
  freshRegistry: registryService(ECR_AUTH),
});
let workflow: LocalWorkflow;
let ecr: ECRClient;
let pushed: Record<string, PushedImage>;

beforeAll(async () => {
  ecr = moto.ecr();
  const images = [
    ['a1', 'team/a', '1.0'],
    ['a2', 'team/a', '2.0'],
    ['b1', 'team/b', '1.0'],
    ['c1', 'team/c', '1.0'],
  ] as const;
  pushed = await pushEcrImages(ecr, ecrRegistry, images, 'sharded');
  workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
}, 180_000);

afterAll(async () => {
  await cleanupFixtures();
});

function run(input: unknown, options: Partial<RunOptions> = {}): Promise<LocalExecution> {
  return workflow.run(input, {
    bucket: BUCKET,
    ...options,
    lambdaEnv: { [ENV.ECR_REGISTRY_URL]: ecrRegistry.url, ...options.lambdaEnv },
    workerEnv: (mode) => ({ [ENV.ECR_REGISTRY_URL]: mode === 'restore' ? freshRegistry.url : ecrRegistry.url }),
  });
}

const store = () => openBackupStore(`s3://${BUCKET}/${PREFIX}`);
const report = async (runId: string) => RunReport.parse(await store().runs.readReport(runId));
const plan = (e: LocalExecution) => ShardedListingPlan.parse(e.lambdas.find((l) => l.state === STATE.list)?.result);
const merged = (e: LocalExecution) => ListingOutput.parse(e.lambdas.find((l) => l.state === STATE.mergeShards)?.result);
const explain = (e: LocalExecution) =>
  JSON.stringify({ status: e.status, error: e.error, cause: e.cause, states: e.statesEntered }, null, 1);

/** The listing's AWS calls (all three of its steps) during `fn`, by client and command. */
async function listingCalls(fn: () => Promise<LocalExecution>) {
  const from = workflow.calls.length;
  const execution = await fn();
  const calls = workflow.calls.slice(from).filter((c) => c.component === 'list');
  const count = (client: string) => {
    const counts: Record<string, number> = {};
    for (const c of calls.filter((c) => c.client === client)) {
      const command = c.command.replace(/Command$/, '');
      counts[command] = (counts[command] ?? 0) + 1;
    }
    return counts;
  };
  return { execution, calls, ecr: count('ECRClient') };
}

describe('the sharded listing in the synthesized workflow', () => {
  it('lists one shard per repository; tags and repositories deleted at the source reach the report once; settings follow their cadence; --as-of restores a deleted repository', async () => {
    // Run 1: three repositories, three shards, everything new.
    const first = await listingCalls(() => run({}));
    expect(first.execution.status, explain(first.execution)).toBe('SUCCEEDED');
    expect(plan(first.execution)).toMatchObject({ shardCount: 3, repositoryCount: 3, goneCount: 0 });
    expect(first.execution.lambdas.filter((l) => l.state === STATE.listShard)).toHaveLength(3);
    expect(merged(first.execution)).toMatchObject({ itemCount: 4, unchangedCount: 0, settingsRecorded: 3, deletedCount: 0 });
    expect(first.execution.output).toMatchObject({ counts: { images: 4, copied: 4, failed: 0 } });
    // Settings in full the first time: DescribeRepositories once, then 3 policy/tag reads per repository.
    expect(first.ecr).toEqual({
      DescribeRepositories: 1,
      DescribeImages: 3,
      GetLifecyclePolicy: 3,
      GetRepositoryPolicy: 3,
      ListTagsForResource: 3,
    });
    const beforeDeletion = new Date().toISOString();

    // At the source: team/a:2.0 deleted, team/c deleted with its images, team/b gets a lifecycle policy.
    await ecr.send(new BatchDeleteImageCommand({ repositoryName: 'team/a', imageIds: [{ imageTag: '2.0' }] }));
    await ecr.send(new DeleteRepositoryCommand({ repositoryName: 'team/c', force: true }));
    const lifecyclePolicyText = JSON.stringify({
      rules: [
        { rulePriority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 9 }, action: { type: 'expire' } },
      ],
    });
    await ecr.send(new PutLifecyclePolicyCommand({ repositoryName: 'team/b', lifecyclePolicyText }));

    // Run 2: the deleted tag and the deleted repository's tag are tombstoned and reported; within the
    // settings cadence no policy or tag is read (the lifecycle policy waits for the cadence).
    const second = await listingCalls(() => run({}));
    expect(second.execution.status, explain(second.execution)).toBe('SUCCEEDED');
    expect(plan(second.execution)).toMatchObject({ shardCount: 3, repositoryCount: 2, goneCount: 1 });
    expect(merged(second.execution)).toMatchObject({ itemCount: 0, unchangedCount: 2, settingsRecorded: 0, deletedCount: 2 });
    expect(second.ecr).toEqual({ DescribeRepositories: 1, DescribeImages: 2 });
    const secondReport = await report(second.execution.name);
    expect(secondReport.deletedAtSource?.map((d) => [d.repository, d.tag, d.lastDigest])).toEqual([
      ['team/a', '2.0', pushed.a2!.digest],
      ['team/c', '1.0', pushed.c1!.digest],
    ]);
    expect(secondReport.repositoryNotes).toEqual([
      { repository: 'team/a', action: 'unchanged' },
      { repository: 'team/b', action: 'unchanged' },
      { repository: 'team/c', action: 'deleted' },
    ]);
    const markdown = (await storeObjects(store()).getBytes(runKeys.reportMarkdown(second.execution.name))).toString('utf8');
    const deletedSection = markdown.split('## Deleted at source since the last run')[1]!.split('\n## ')[0]!;
    expect(deletedSection).toContain(`| team/c | 1.0 | \`${pushed.c1!.digest}\` |`);
    expect(await store().repository('team/c').listImages()).toEqual([]);
    expect(await storeObjects(store()).head(deletedRepositoryKey('team/c'))).toBeDefined();
    expect(await store().repositorySettings('team/b')).not.toHaveProperty('lifecyclePolicy');

    // Run 3, with the cadence elapsed (0 s): team/b's policy is read and recorded; team/c is not
    // listed again (no shard, no catalog LIST of it) and nothing is reported deleted twice.
    const third = await listingCalls(() => run({}, { lambdaEnv: { [ENV.SETTINGS_CADENCE_SECONDS]: '0' } }));
    expect(third.execution.status, explain(third.execution)).toBe('SUCCEEDED');
    expect(plan(third.execution)).toMatchObject({ shardCount: 2, repositoryCount: 2, goneCount: 0 });
    expect(merged(third.execution)).toMatchObject({ itemCount: 0, unchangedCount: 2, settingsRecorded: 1, deletedCount: 0 });
    expect(third.ecr).toEqual({
      DescribeRepositories: 1,
      DescribeImages: 2,
      GetLifecyclePolicy: 2,
      GetRepositoryPolicy: 2,
      ListTagsForResource: 2,
    });
    expect(third.calls.filter((c) => String(c.input.Prefix ?? '').includes('catalog/team/c/'))).toEqual([]);
    const thirdReport = await report(third.execution.name);
    expect(thirdReport.deletedAtSource).toBeUndefined();
    expect(thirdReport.repositoryNotes).toEqual([
      { repository: 'team/a', action: 'unchanged' },
      { repository: 'team/b', action: 'recorded' },
    ]);
    expect(await store().repositorySettings('team/b')).toMatchObject({ lifecyclePolicy: lifecyclePolicyText });

    // A restore as of before the deletion brings team/c:1.0 back, digest for digest (restores stay unsharded).
    const restore = await run({
      mode: 'restore',
      repositories: ['team/c'],
      asOf: beforeDeletion,
      target: { repositoryPrefix: 'restored/' },
    });
    expect(restore.status, explain(restore)).toBe('SUCCEEDED');
    expect(restore.statesEntered).not.toContain(STATE.listShards);
    expect(restore.output).toMatchObject({ counts: { images: 1, copied: 1, failed: 0 } });
    expect((await inspectRaw(`${freshRegistry.host}/restored/team/c:1.0`, ECR_AUTH)).digest).toBe(pushed.c1!.digest);

    // team/c is back at the source: its marker goes, and its tag is current again.
    await ecr.send(new CreateRepositoryCommand({ repositoryName: 'team/c' }));
    await registerInEcr(ecr, 'team/c', '1.0', pushed.c1!.reference, ECR_AUTH);
    const back = await run({});
    expect(back.status, explain(back)).toBe('SUCCEEDED');
    expect(plan(back)).toMatchObject({ shardCount: 3, repositoryCount: 3, goneCount: 0 });
    // team/c:1.0 is work again (its latest entry is a tombstone); its blobs are all stored already.
    expect(merged(back)).toMatchObject({ itemCount: 1, unchangedCount: 2, deletedCount: 0 });
    expect(back.output).toMatchObject({ counts: { images: 3, failed: 0 } });
    expect(await storeObjects(store()).head(deletedRepositoryKey('team/c'))).toBeUndefined();
    expect(await store().repository('team/c').listImages()).toMatchObject([{ tag: '1.0', digest: pushed.c1!.digest }]);
  }, 300_000);

  it('every AWS call of the runs above is allowed by the synthesized roles, bucket policy and key policies', async () => {
    const evaluation = await evaluateRecordedCalls(workflow);
    expect(evaluation.denied).toEqual([]);
    expect(evaluation.callsByRole.list).toBeGreaterThan(0);
  });
});
