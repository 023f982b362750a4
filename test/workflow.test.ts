// End-to-end: the synthesized Step Functions definition, run by a real ASL interpreter
// (aws-local-stepfunctions, see harness/local-workflow.ts) with the real listing and summary Lambda
// handlers in-process and the real worker as one child process per Fargate task. AWS is moto (S3
// store bucket, ECR control plane, SNS, CloudWatch); ECR's data plane is a real registry that accepts
// the credentials moto's GetAuthorizationToken hands out. Restores go into a second, empty registry.
// Digests are read back with skopeo, an independent client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { DescribeRepositoriesCommand, type ECRClient, PutImageScanningConfigurationCommand } from '@aws-sdk/client-ecr';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage, pushMultiArchIndex } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { startLyingProxy } from './harness/lying-proxy.ts';
import { inEcr } from './harness/ecr-images.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution, LocalWorkflow, RunOptions } from './harness/local-workflow-types.ts';
import { evaluateRecordedCalls } from './harness/iam-calls.ts';
import { ListingOutput, RunReport, runKeys } from '../schema/contract.ts';
import { ENV } from '../schema/environment.ts';
import { STATE } from '../schema/workflow-states.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import { openBackupStore } from '../core/store/url.ts';
import { parseSettingsKey } from '../core/store/layout.ts';
import { storeObjects } from '../core/store/store-objects.ts';

const PREFIX = 'backups/';
const TOLERANCE = 40;

/** The deployment under test: team/** protected (restores also to restored/**), 2 images per Fargate task, 40 % failure tolerance. */
const config: EcrBackupContext = {
  stackName: 'EcrBackupWorkflowTest',
  repositories: ['team/**'],
  restoreRepositories: ['team/**', 'restored/**'],
  schedule: null,
  prefix: PREFIX,
  mapConcurrency: 3,
  failureTolerancePercent: TOLERANCE,
  batchMaxImages: 2,
  imageFormat: 'oci',
};

const { moto, ecrRegistry, freshRegistry } = useServices({
  moto: motoService({
    awsEnv: true,
    buckets: ['wf-filtered', 'wf-scheduled', 'wf-failing', 'wf-crash', 'wf-invalid'],
    repositories: ['team/app', 'team/lib', 'other/svc'],
  }),
  ecrRegistry: registryService(ECR_AUTH),
  freshRegistry: registryService(ECR_AUTH),
});
let workflow: LocalWorkflow;
let ecr: ECRClient;
let s3: S3Client;
const pushed: Record<string, PushedImage> = {};

beforeAll(async () => {
  ecr = moto.ecr();
  s3 = moto.s3();

  // Images in "ECR": the registry holds the bytes, moto the control plane (put_image with the real digest).
  const toEcr = async (key: string, image: Promise<PushedImage>) => {
    pushed[key] = await inEcr(ecr, image, ECR_AUTH);
  };
  await toEcr('app', pushImage(ecrRegistry, { repository: 'team/app', tag: '1.0', variant: 'wf-app' }));
  await toEcr('multi', pushMultiArchIndex(ecrRegistry, { repository: 'team/app', tag: 'multi', variant: 'wf-multi' }));
  await toEcr('lib', pushImage(ecrRegistry, { repository: 'team/lib', tag: '1.0', variant: 'wf-lib' }));
  await toEcr('other', pushImage(ecrRegistry, { repository: 'other/svc', tag: 'latest', variant: 'wf-other' }));

  workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
});

afterAll(async () => {
  await cleanupFixtures();
});

/** Runs an execution with ECR's data plane at ecrRegistry, restores going to freshRegistry. */
function run(input: unknown, bucket: string, options: Partial<RunOptions> = {}): Promise<LocalExecution> {
  return workflow.run(input, {
    bucket,
    lambdaEnv: { [ENV.ECR_REGISTRY_URL]: ecrRegistry.url },
    workerEnv: (mode) => ({ [ENV.ECR_REGISTRY_URL]: mode === 'restore' ? freshRegistry.url : ecrRegistry.url }),
    ...options,
  });
}

const store = (bucket: string) => openBackupStore(`s3://${bucket}/${PREFIX}`);
const report = async (bucket: string, runId: string) => RunReport.parse(await store(bucket).runs.readReport(runId));
/** The run's listing: Merge shards' output for a backup (List images only plans it), List images' for a restore. */
const listing = (execution: LocalExecution) =>
  ListingOutput.parse(
    (execution.lambdas.find((l) => l.state === STATE.mergeShards) ?? execution.lambdas.find((l) => l.state === STATE.list))?.result,
  );
/** A backup's listing states with one shard (the harness runs a distributed Map as reader, inline Map, writer). */
const SHARDED_LISTING = [
  STATE.shardedListing,
  `${STATE.listShards} (ItemReader)`,
  STATE.listShards,
  STATE.listShard,
  `${STATE.listShards} (ResultWriter)`,
  STATE.mergeShards,
];

/** Diagnostics for a failed expectation: the outcome and every worker's log. */
const explain = (e: LocalExecution) =>
  JSON.stringify(
    {
      status: e.status,
      error: e.error,
      cause: e.cause,
      states: e.statesEntered,
      workers: e.workers.map((w) => ({ ...w, output: w.output.slice(-3000) })),
    },
    null,
    1,
  );

async function catalog(bucket: string): Promise<Record<string, Record<string, string>>> {
  const s = store(bucket);
  const out: Record<string, Record<string, string>> = {};
  for (const repository of await s.listRepositories()) {
    out[repository] = Object.fromEntries((await s.repository(repository).listImages()).map((l) => [l.tag ?? '', l.digest ?? '']));
  }
  return out;
}

/** The keys of a repository's settings records in the store (not the marker of the last full read). */
async function settingsFiles(bucket: string, repository: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storeObjects(store(bucket)).list(`catalog/${repository}/_settings/`))
    if (parseSettingsKey(object.key, repository)) keys.push(object.key);
  return keys;
}

/** The filtered backup of team/app into wf-filtered, run once (test 1 asserts it, the restore reuses the store). */
let filteredBackup: Promise<LocalExecution> | undefined;
const backUpTeamApp = () => (filteredBackup ??= run({ mode: 'backup', repositories: ['team/app'] }, 'wf-filtered'));

describe('the synthesized workflow, run locally', () => {
  it('backs up only the repository the input names, and writes the run report', async () => {
    const execution = await backUpTeamApp();
    expect(execution.status, explain(execution)).toBe('SUCCEEDED');
    const runId = execution.name;
    expect(execution.output).toEqual({
      runId,
      reportKey: `runs/${runId}/report.json`,
      counts: expect.objectContaining({ images: 2, copied: 2, unchanged: 0, failed: 0 }),
    });
    // The listing Lambda got the execution ARN and the input; it handed the Map a reference only.
    const list = execution.lambdas.find((l) => l.state === STATE.list)!;
    expect(list.event).toEqual({ executionId: execution.executionArn, input: { mode: 'backup', repositories: ['team/app'] } });
    expect(listing(execution)).toMatchObject({
      runId,
      bucket: 'wf-filtered',
      batchesKey: `${PREFIX}runs/${runId}/batches.json`,
      batchCount: 1,
      itemCount: 2,
    });
    // The summary Lambda received exactly {runId, mode, listing}: the Map discarded its output.
    expect(Object.keys(execution.lambdas.find((l) => l.state === STATE.summarize)!.event as object).sort()).toEqual([
      'listing',
      'mode',
      'runId',
    ]);
    expect(execution.statesEntered).toEqual([
      STATE.list,
      ...SHARDED_LISTING,
      STATE.anythingToCopy,
      `${STATE.map} (ItemReader)`,
      STATE.map,
      STATE.backupOrRestore,
      STATE.backup,
      `${STATE.map} (ResultWriter)`,
      STATE.summarize,
    ]);
    expect(execution.workers.map((w) => [w.mode, w.batchKey, w.exitCode])).toEqual([['backup', runKeys.batch(runId, 0), 0]]);

    expect(await catalog('wf-filtered')).toEqual({ 'team/app': { '1.0': pushed.app!.digest, multi: pushed.multi!.digest } });
    const written = await report('wf-filtered', runId);
    expect(written).toMatchObject({ runId, mode: 'backup', counts: { images: 2, copied: 2, failed: 0 }, failures: [] });
    expect(written.results.map((r) => [r.repository, r.tag, r.digest, r.status]).sort()).toEqual([
      ['team/app', '1.0', pushed.app!.digest, 'copied'],
      ['team/app', 'multi', pushed.multi!.digest, 'copied'],
    ]);
  });

  it('an empty (scheduled) input backs up the protected repositories; the next one has nothing to copy', async () => {
    const first = await run({}, 'wf-scheduled');
    expect(first.status, explain(first)).toBe('SUCCEEDED');
    expect(first.output).toMatchObject({ counts: { images: 3, copied: 3, failed: 0 } });
    expect(listing(first)).toMatchObject({ batchCount: 2, itemCount: 3, unchangedCount: 0 });
    expect(first.workers.map((w) => w.exitCode)).toEqual([0, 0]);
    // PROTECTED_REPOSITORIES = ["team/**"] (from the stack's configuration): other/svc stays out.
    expect(workflow.lambdaEnvironment(first.lambdas[0]!.functionName, 'wf-scheduled')).toMatchObject({
      [ENV.PROTECTED_REPOSITORIES]: '["team/**"]',
      [ENV.STORE_URL]: `s3://wf-scheduled/${PREFIX}`,
    });
    expect(await catalog('wf-scheduled')).toEqual({
      'team/app': { '1.0': pushed.app!.digest, multi: pushed.multi!.digest },
      'team/lib': { '1.0': pushed.lib!.digest },
    });

    // The listing recorded both repositories' settings; the workers did not record them again.
    expect(listing(first)).toMatchObject({ settingsRecorded: 2 });
    expect((await report('wf-scheduled', first.name)).repositoryNotes).toEqual([
      { repository: 'team/app', action: 'recorded' },
      { repository: 'team/lib', action: 'recorded' },
    ]);
    expect(await settingsFiles('wf-scheduled', 'team/lib')).toHaveLength(1);

    // No image changes, but team/lib now scans on push (DescribeRepositories reports it): the next
    // run records its new settings. (Policies and tags on their cadence: test/sharded-listing.test.ts.)
    await ecr.send(
      new PutImageScanningConfigurationCommand({ repositoryName: 'team/lib', imageScanningConfiguration: { scanOnPush: true } }),
    );
    const second = await run({}, 'wf-scheduled');
    expect(second.status, explain(second)).toBe('SUCCEEDED');
    expect(listing(second)).toMatchObject({ batchCount: 0, itemCount: 0, unchangedCount: 3, settingsRecorded: 1 });
    expect((await report('wf-scheduled', second.name)).repositoryNotes).toEqual([
      { repository: 'team/app', action: 'unchanged' },
      { repository: 'team/lib', action: 'recorded' },
    ]);
    expect(await settingsFiles('wf-scheduled', 'team/lib')).toHaveLength(2);
    expect(await store('wf-scheduled').repositorySettings('team/lib')).toMatchObject({ scanOnPush: true });
    expect(second.statesEntered).toEqual([STATE.list, ...SHARDED_LISTING, STATE.anythingToCopy, STATE.summarize]);
    expect(second.workers).toEqual([]);
    expect(second.output).toMatchObject({ counts: { images: 3, unchanged: 3, copied: 0, failed: 0, bytesCopied: 0 } });
    expect((await report('wf-scheduled', second.name)).counts).toMatchObject({ images: 3, unchanged: 3, copied: 0 });
  });

  it('restores into a fresh registry under a repository prefix with identical digests (image and multi-arch index)', async () => {
    expect((await backUpTeamApp()).status).toBe('SUCCEEDED');
    const execution = await run({ mode: 'restore', repositories: ['team/app'], target: { repositoryPrefix: 'restored/' } }, 'wf-filtered');
    expect(execution.status, explain(execution)).toBe('SUCCEEDED');
    expect(execution.statesEntered).toContain(STATE.restore);
    expect(execution.statesEntered).not.toContain(STATE.backup);
    expect(execution.workers.map((w) => [w.mode, w.exitCode])).toEqual([['restore', 0]]);
    expect(execution.output).toMatchObject({ counts: { images: 2, copied: 2, failed: 0 } });

    for (const image of [pushed.app!, pushed.multi!]) {
      const restored = await inspectRaw(`${freshRegistry.host}/restored/${image.repository}:${image.tag}`, ECR_AUTH);
      expect(restored.digest, `restored/${image.repository}:${image.tag}`).toBe(image.digest);
    }
    for (const child of pushed.multi!.children) {
      expect((await inspectRaw(`${freshRegistry.host}/restored/team/app@${child.digest}`, ECR_AUTH)).digest).toBe(child.digest);
    }
    // The worker's repository notes reach the run report.
    expect((await report('wf-filtered', execution.name)).repositoryNotes).toEqual([
      { repository: 'team/app', targetRepository: 'restored/team/app', action: 'created', settingsApplied: true },
    ]);
    // The restore created the repository through the ECR API and pushed to the fresh registry only.
    const repositories = await ecr.send(new DescribeRepositoriesCommand({}));
    expect(repositories.repositories?.map((r) => r.repositoryName)).toContain('restored/team/app');
    await expect(inspectRaw(`${ecrRegistry.host}/restored/team/app:1.0`, ECR_AUTH)).rejects.toThrow();
  });

  it.each([
    [
      { target: { repositoryPrefix: 'evil/' } },
      /restore would write evil\/team\/app, outside the stack's restoreRepositories \(team\/\*\*, restored\/\*\*\)/,
    ],
    [{ target: { region: 'eu-west-1' } }, /target\.region eu-west-1 is not this stack's region us-east-1/],
    [
      { mode: 'backup', format: 'docker-archive', label: 'elsewhere' },
      /label elsewhere is not one of the stack's archive labels \(us-east-1\); add it to the archiveLabels prop/,
    ],
  ])('an input writing outside the stack (%j) fails at the listing with a clear error, before any work', async (extra, message) => {
    expect((await backUpTeamApp()).status).toBe('SUCCEEDED');
    const execution = await run({ mode: 'restore', repositories: ['team/app'], ...extra }, 'wf-filtered');
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('InvalidInputError');
    expect(execution.causeMessage).toMatch(message);
    expect(execution.statesEntered).toEqual([STATE.list]);
    expect(execution.workers).toEqual([]);
  });

  it('a failed image is named in the report, the rest is stored, and the tolerance decides the outcome', async () => {
    // ECR's data plane, seen through a proxy that flips bytes of team/lib:1.0's layer: the worker's
    // digest check fails that image (and stores nothing of it); the others copy.
    const lib = pushed.lib!;
    const layer = lib.blobs.find((b) => b.digest !== lib.configDigest)!;
    const proxy = await startLyingProxy({ upstream: ecrRegistry.url, digests: [layer.digest], mode: 'flip' });
    const throughProxy: Partial<RunOptions> = { workerEnv: () => ({ [ENV.ECR_REGISTRY_URL]: proxy.url }) };
    try {
      // 1 of 2 failed = 50 % > 40 %: the execution fails at the summary, the cause gives the counts.
      const over = await run({ repositories: ['team/app', 'team/lib'], tags: ['1.0'] }, 'wf-failing', throughProxy);
      expect(over.status, explain(over)).toBe('FAILED');
      expect(proxy.lies.length).toBeGreaterThan(0);
      expect(over.statesEntered.at(-1)).toBe(STATE.summarize);
      expect(over.error).toBe('RunFailedError');
      expect(over.causeMessage).toMatch(/^1 of 2 image\(s\) failed \(50\.0%, tolerance 40%\); first: team\/lib:1\.0: .*digest mismatch/);
      expect(over.causeMessage).toContain(`report: runs/${over.name}/report.json`);
      // A failed image is a result, not a task failure: the worker exited 0, no batch failure recorded.
      expect(over.workers.map((w) => w.exitCode)).toEqual([0]);
      expect(over.statesEntered).not.toContain(STATE.batchFailed);
      const overReport = await report('wf-failing', over.name);
      expect(overReport.counts).toMatchObject({ images: 2, copied: 1, failed: 1 });
      expect(overReport.failures).toEqual([
        expect.objectContaining({ repository: 'team/lib', tag: '1.0', status: 'failed', error: expect.stringContaining(layer.digest) }),
      ]);
      expect(await catalog('wf-failing')).toEqual({ 'team/app': { '1.0': pushed.app!.digest } });

      // The scheduled run: team/app:1.0 unchanged, team/app:multi copied, team/lib:1.0 failed again:
      // 1 of 3 = 33.3 %, within the tolerance: the execution succeeds and the report still names it.
      const within = await run({}, 'wf-failing', throughProxy);
      expect(within.status, explain(within)).toBe('SUCCEEDED');
      expect(within.output).toMatchObject({ counts: { images: 3, copied: 1, unchanged: 1, failed: 1 } });
      expect((await report('wf-failing', within.name)).failures.map((f) => `${f.repository}:${f.tag}`)).toEqual(['team/lib:1.0']);
      expect(await catalog('wf-failing')).toEqual({ 'team/app': { '1.0': pushed.app!.digest, multi: pushed.multi!.digest } });
    } finally {
      await proxy.stop();
    }
  });

  it('a Fargate task that exits non-zero is caught per batch, and its images count as failed', async () => {
    // The worker refuses a bad IMAGE_FORMAT at start-up: exit 1, as a misconfigured task would.
    const execution = await run({ repositories: ['team/lib'] }, 'wf-crash', {
      workerEnv: (mode) => ({
        [ENV.ECR_REGISTRY_URL]: mode === 'restore' ? freshRegistry.url : ecrRegistry.url,
        [ENV.IMAGE_FORMAT]: 'tarball',
      }),
    });
    expect(execution.status, explain(execution)).toBe('FAILED');
    expect(execution.workers.map((w) => w.exitCode)).toEqual([1]);
    expect(execution.workers[0]!.output).toContain(ENV.IMAGE_FORMAT);
    // Catch -> Record batch failure (with the stopped task as the cause) -> the map completes -> summary.
    expect(execution.statesEntered).toEqual([
      STATE.list,
      ...SHARDED_LISTING,
      STATE.anythingToCopy,
      `${STATE.map} (ItemReader)`,
      STATE.map,
      STATE.backupOrRestore,
      STATE.backup,
      STATE.batchFailed,
      `${STATE.map} (ResultWriter)`,
      STATE.summarize,
    ]);
    const recorded = execution.events.find((e) => e.type === 'StateExited' && e.state?.name === STATE.batchFailed)?.state?.output as {
      error: string;
      cause: string;
    };
    expect(recorded).toMatchObject({ failed: true, error: 'States.TaskFailed' });
    expect(JSON.parse(recorded.cause)).toMatchObject({ StopCode: 'EssentialContainerExited', Containers: [{ ExitCode: 1 }] });
    expect(execution.error).toBe('RunFailedError');
    expect(execution.causeMessage).toMatch(
      /^1 of 1 image\(s\) failed \(100\.0%, tolerance 40%\); first: team\/lib:1\.0: no result recorded for batch 0/,
    );
    expect((await report('wf-crash', execution.name)).failures).toHaveLength(1);
    expect(await catalog('wf-crash')).toEqual({});
  });

  it.each([
    [{ mode: 'sideways' }, 'InvalidInputError', /^invalid execution input: mode: /],
    [{ repositories: 'x' }, 'InvalidInputError', /^invalid execution input: repositories: /],
    [
      { mode: 'backup', target: { repositoryPrefix: 'dr/' } },
      'InvalidInputError',
      /^invalid execution input: target: target applies to restore runs only/,
    ],
    [
      { repositories: ['other/svc'] },
      'UnknownRepositoryError',
      /repository other\/svc is not among the protected repositories \(team\/\*\*\)/,
    ],
  ])('input %j fails the execution at the listing state with %s, naming the field, before any work', async (input, error, message) => {
    const execution = await run(input, 'wf-invalid');
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe(error);
    expect(execution.causeMessage).toMatch(message);
    expect(JSON.parse(execution.cause!)).toMatchObject({ errorType: error });
    expect(execution.statesEntered).toEqual([STATE.list]);
    expect(execution.workers).toEqual([]);
    expect(execution.lambdas.map((l) => l.state)).toEqual([STATE.list]);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: 'wf-invalid' }))).KeyCount ?? 0).toBe(0);
  });
});

describe('IAM, proven offline', () => {
  it('allows every AWS call each component made in the runs above, by its synthesized role, the bucket policy and the key policies', async () => {
    const evaluation = await evaluateRecordedCalls(workflow);
    console.log(
      `IAM-checked AWS calls per role (workflow.test.ts): ${JSON.stringify(evaluation.callsByRole)}; IAM requests: ${JSON.stringify(evaluation.requestsByRole)}`,
    );
    expect(evaluation.denied).toEqual([]);
    for (const component of ['list', 'summarize', 'backup', 'restore', 'stateMachine'] as const)
      expect(evaluation.callsByRole[component], component).toBeGreaterThan(0);
  });
});
