// Event-driven backups (pushBackups prop): the synthesized rule, queue and Lambda, and ECR push
// events delivered through an emulated EventBridge -> SQS (harness/event-delivery.ts) into the real
// push handler, whose executions run in the local workflow harness (moto + a real registry).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Template } from 'aws-cdk-lib/assertions';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushEcrImages } from './harness/ecr-images.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution, LocalWorkflow } from './harness/local-workflow-types.ts';
import { deliverToQueue, ecrPushEvent } from './harness/event-delivery.ts';
import { MAX_PUSHED_IMAGES, parseExecutionInput, RunReport, type ExecutionInput } from '../schema/contract.ts';
import { ENV } from '../schema/environment.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import { startOnPush, TooManyRunningError, type ExecutionStarter } from '../lambdas/start-on-push.ts';
import { openBackupStore } from '../core/store/url.ts';
import { CloudWatchClient, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { execa } from 'execa';
import { DRILL_CONTAINER, DRILL_CONTAINER_COMMAND } from '../infra/restore-drill.ts';
import { resolveValue } from './harness/synthesized-workflow.ts';
import { DrillReport, drillReportKey } from '../schema/drill.ts';
import { captureEmf } from './harness/emf.ts';
import { storeObjects } from '../core/store/store-objects.ts';
import { readJson } from '../core/store/object-store.ts';

const PREFIX = 'backups/';
const BUCKET = 'push-store';
const config: EcrBackupContext = {
  stackName: 'EcrBackupPushTest',
  repositories: ['team/**'],
  schedule: null,
  prefix: PREFIX,
  batchMaxImages: 10,
  pushBackups: { batchWindowSeconds: 20, batchSize: 500, maxRunningExecutions: 2 },
  // Also on: the per-repository backup age (dashboard) and the drill task, run below from the template.
  dashboard: {},
  restoreDrill: { sample: 'all' },
};

const { moto, registry } = useServices({
  moto: motoService({ awsEnv: true, buckets: [BUCKET], repositories: ['team/app', 'team/lib', 'other/svc'] }),
  registry: registryService(ECR_AUTH),
});
let workflow: LocalWorkflow;
let ecr: ECRClient;
let pushed: Record<string, PushedImage>;

beforeAll(async () => {
  ecr = moto.ecr();
  const images = [
    ['app1', 'team/app', '1.0'],
    ['app2', 'team/app', '2.0'],
    ['lib', 'team/lib', '1.0'],
    ['other', 'other/svc', 'latest'],
  ] as const;
  pushed = await pushEcrImages(ecr, registry, images, 'push');
  workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

/** Step Functions as the harness: executions by name (StartExecution's idempotency), run locally. */
function localStarter() {
  const executions = new Map<string, Promise<LocalExecution>>();
  const starter: ExecutionStarter = {
    running: async () => 0,
    async start(name, input) {
      if (executions.has(name)) return false;
      executions.set(
        name,
        workflow.run(input, {
          bucket: BUCKET,
          name,
          lambdaEnv: { [ENV.ECR_REGISTRY_URL]: registry.url },
          workerEnv: { [ENV.ECR_REGISTRY_URL]: registry.url },
        }),
      );
      return true;
    },
  };
  return { starter, executions };
}

const store = () => openBackupStore(`s3://${BUCKET}/${PREFIX}`);
async function catalog(): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const repository of await store().listRepositories()) {
    out[repository] = Object.fromEntries((await store().repository(repository).listImages()).map((l) => [l.tag ?? '', l.digest ?? '']));
  }
  return out;
}
const event = (key: keyof typeof pushed) =>
  ecrPushEvent(pushed[key]!.repository, pushed[key]!.tag, pushed[key]!.digest) as Record<string, unknown>;

describe('the synthesized push pipeline', () => {
  it('routes successful ECR pushes of protected repositories through a batching queue to a Lambda with reserved concurrency 1', () => {
    const template = Template.fromJSON(workflow.template as unknown as Record<string, unknown>);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecr'],
        'detail-type': ['ECR Image Action'],
        detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': [{ wildcard: 'team/*' }] },
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 500, MaximumBatchingWindowInSeconds: 20 });
    template.hasResourceProperties('AWS::Lambda::Function', {
      ReservedConcurrentExecutions: 1,
      Environment: { Variables: { MAX_RUNNING_EXECUTIONS: '2', PROTECTED_REPOSITORIES: '["team/**"]' } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, RedrivePolicy: { maxReceiveCount: 10 } });
  });
});

describe('push events delivered to the workflow (scripted Step Functions starter: the local harness runs each execution)', () => {
  it('a burst of duplicate push events starts one execution that backs up each pushed image once; the scheduled run then copies only what was not pushed', async () => {
    // 603 events: each of two protected images pushed (and its event delivered) 300 times, plus pushes the
    // rule or the handler must drop: an unprotected repository, a failed push, an untagged push.
    const burst = [...Array(300)].flatMap(() => [event('app1'), event('lib')]);
    burst.push(
      event('other'),
      ecrPushEvent('team/app', '2.0', pushed.app2!.digest, 'FAILURE'),
      ecrPushEvent('team/app', undefined, pushed.app2!.digest),
    );
    const { starter, executions } = localStarter();
    const emf = captureEmf();
    const t0 = Date.now();
    const batches = deliverToQueue(workflow.template, burst);
    expect(batches.map((b) => b.Records.length)).toEqual([500, 101]); // other/svc and the failed push never reach the queue
    const outcomes = [];
    for (const batch of batches) outcomes.push(await startOnPush(batch, { protectedRepositories: ['team/**'], maxRunning: 2, starter }));
    // Both batches name the same two images: one execution (the second finds it already started).
    expect(outcomes.map((o) => o.executions)).toEqual([outcomes[0]!.executions, outcomes[0]!.executions]);
    expect(outcomes[0]!.images).toEqual([
      { repository: 'team/app', tag: '1.0' },
      { repository: 'team/lib', tag: '1.0' },
    ]);
    expect(outcomes[1]!.ignored).toBe(1); // the untagged push
    expect(executions.size).toBe(1);
    const execution = await [...executions.values()][0]!;
    const rpoMs = Date.now() - t0;
    emf.stop();
    expect(execution.status).toBe('SUCCEEDED');
    const report = RunReport.parse(await store().runs.readReport(execution.name));
    expect(report.results.map((r) => [r.repository, r.tag, r.digest, r.status])).toEqual([
      ['team/app', '1.0', pushed.app1!.digest, 'copied'],
      ['team/lib', '1.0', pushed.lib!.digest, 'copied'],
    ]);
    // team/app:2.0 was not pushed in this burst: the push run leaves it to the schedule.
    expect(await catalog()).toEqual({ 'team/app': { '1.0': pushed.app1!.digest }, 'team/lib': { '1.0': pushed.lib!.digest } });
    console.log(
      `local RPO path (events -> queue -> handler -> workflow -> image in the store): ${rpoMs} ms for ${burst.length} events, 2 images`,
    );

    // The dashboard's backup age: both repositories have a last successful backup now, published per repository.
    const last = (await store().runs.readLastBackups()) as Record<string, string>;
    expect(Object.keys(last).sort()).toEqual(['team/app', 'team/lib']);
    const metrics = emf.metrics().filter((m) => m.namespace === 'EcrBackup');
    const ages = metrics.filter((m) => m.name === 'LastBackupAgeSeconds');
    expect(ages.map((m) => m.dimensions).sort((a, b) => String(a.Repository).localeCompare(String(b.Repository)))).toEqual([
      { Repository: 'team/app' },
      { Repository: 'team/lib' },
    ]);
    expect(metrics.filter((m) => m.name === 'OldestBackupAgeSeconds').map((m) => m.dimensions)).toEqual([{}]);
    // The run's counts, with the dimension the dashboard and the failure alarm select on.
    expect(metrics.find((m) => m.name === 'ImagesCopied')).toMatchObject({ value: 2, dimensions: { Mode: 'backup' } });

    const scheduled = await workflow.run(
      {},
      { bucket: BUCKET, lambdaEnv: { [ENV.ECR_REGISTRY_URL]: registry.url }, workerEnv: { [ENV.ECR_REGISTRY_URL]: registry.url } },
    );
    expect(scheduled.output).toMatchObject({ counts: { images: 3, copied: 1, unchanged: 2, failed: 0 } });
  });

  it('a push the scheduled run already backed up is listed as unchanged, and a redelivered batch starts nothing new', async () => {
    const { starter, executions } = localStarter();
    const [batch] = deliverToQueue(workflow.template, [event('app2')]);
    const first = await startOnPush(batch!, { protectedRepositories: ['team/**'], maxRunning: 2, starter });
    const again = await startOnPush(batch!, { protectedRepositories: ['team/**'], maxRunning: 2, starter });
    expect(again.executions).toEqual(first.executions);
    expect(executions.size).toBe(1);
    const execution = await executions.get(first.executions[0]!)!;
    expect(execution.output).toMatchObject({ counts: { images: 1, copied: 0, unchanged: 1 } });
  });
});

describe('the burst bound (scripted starter: counts executions, none run)', () => {
  it('10,000 pushes of 2,000 tags become at most ceil(10,000 / batch size) executions, never more than the running limit at once', async () => {
    const events = [...Array(10_000)].map(
      (_, i) => ecrPushEvent('team/app', `v${i % 2000}`, `sha256:${String(i % 2000).padStart(64, '0')}`) as Record<string, unknown>,
    );
    const batches = deliverToQueue(workflow.template, events);
    expect(batches).toHaveLength(20); // batch size 500
    const started: ExecutionInput[] = [];
    let running = 0;
    const starter: ExecutionStarter = {
      running: async () => running,
      async start(_name, input) {
        started.push(input);
        running += 1; // nothing finishes during the burst
        return true;
      },
    };
    const refused: unknown[] = [];
    for (const batch of batches) {
      await startOnPush(batch, { protectedRepositories: ['team/**'], maxRunning: 2, starter }).catch((error: unknown) =>
        refused.push(error),
      );
    }
    expect(started).toHaveLength(2);
    expect(refused).toHaveLength(18);
    expect(refused.every((e) => e instanceof TooManyRunningError)).toBe(true);
    expect(started.every((input) => input.images!.length <= 500)).toBe(true);
  });
});

describe('the images field of the execution input', () => {
  it('names exact images for backups only, within a bound that keeps the input small', () => {
    const image = { repository: 'team/app', tag: '1.0' };
    expect(parseExecutionInput({ images: [image] }).images).toEqual([image]);
    expect(() => parseExecutionInput({ mode: 'restore', images: [image] })).toThrow('images: images applies to backup runs only');
    expect(() => parseExecutionInput({ images: [{ repository: 'Team/App', tag: '1.0' }] })).toThrow('images.0.repository');
    expect(() => parseExecutionInput({ images: Array(MAX_PUSHED_IMAGES + 1).fill(image) })).toThrow('images');
    expect(
      JSON.stringify({ images: Array(MAX_PUSHED_IMAGES).fill({ repository: 'a'.repeat(60), tag: 'b'.repeat(30) }) }).length,
    ).toBeLessThan(256 * 1024);
  });
});

describe('the scheduled drill task, run as its task definition says (ECR = moto control plane + the registry)', () => {
  it('restores every current image into scratch repositories with the recorded digests, reports and publishes DrillPassed', async () => {
    const task = Object.entries(workflow.template.Resources).find(
      ([, r]) => r.Type === 'AWS::ECS::TaskDefinition' && JSON.stringify(r.Properties).includes(DRILL_CONTAINER),
    )!;
    const container = (
      task[1].Properties!.ContainerDefinitions as Array<{
        Name: string;
        Command: string[];
        Environment: Array<{ Name: string; Value: unknown }>;
      }>
    )[0]!;
    expect(container.Command).toEqual([...DRILL_CONTAINER_COMMAND]); // the image's bundle of worker/drill-main.ts
    const bucketIds = Object.entries(workflow.template.Resources)
      .filter(([, r]) => r.Type === 'AWS::S3::Bucket')
      .map(([id]) => id);
    const env = Object.fromEntries(
      container.Environment.map((e) => [
        e.Name,
        String(resolveValue(workflow.template, e.Value, { overrides: Object.fromEntries(bucketIds.map((id) => [id, BUCKET])) })),
      ]),
    );
    expect(env).toMatchObject({ STORE_URL: `s3://${BUCKET}/${PREFIX}`, DRILL_SAMPLE: 'all', DRILL_SCRATCH_ROOT: 'ecr-backup-drill/' });
    const run = await execa(process.execPath, ['--import', 'tsx', 'worker/drill-main.ts'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...moto.env, ...env, [ENV.ECR_REGISTRY_URL]: registry.url },
      reject: false,
    });
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const line = run.stdout.split('\n').find((l) => l.includes('"drill passed"'))!;
    const drillId = (JSON.parse(line) as { drillId: string }).drillId;
    const report = DrillReport.parse(await readJson(storeObjects(store()), drillReportKey(drillId)));
    expect(report).toMatchObject({ ok: true, sampled: 3, passed: 3, failed: 0 });
    for (const image of report.images) expect(image.restoredDigest).toBe(image.expectedDigest);
    const passed = await new CloudWatchClient(moto.clientConfig).send(
      new ListMetricsCommand({ Namespace: 'EcrBackup', MetricName: 'DrillPassed' }),
    );
    expect(passed.Metrics).toHaveLength(1);
  });
});
