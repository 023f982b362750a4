// `ecr-backup run` / `ecr-backup runs` as child processes against moto's Step Functions and S3.
// moto has two Step Functions modes: by default executions are stored and stay RUNNING (nothing runs,
// no map runs); with `execute_state_machine` its ASL interpreter runs them, DISTRIBUTED Map with an S3
// ItemReader and real map runs included, but every StartExecution after the first fails with a 500
// until /moto-api/reset. So each scenario resets moto and picks its mode; executing scenarios start
// one execution each. State machines are stand-ins with the real workflow's state names (Pass/Wait
// instead of Lambda and ECS tasks); the run reports are put into moto S3 by the test.
import { beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  type Tag,
} from '@aws-sdk/client-sfn';
import { useMoto } from './harness/services.ts';
import { runCli, type CliResult } from './harness/cli.ts';
import { parseExecutionInput, runKeys, STACK_NAME_TAG, type RunReport } from '../schema/contract.ts';
import { STATE } from '../schema/workflow-states.ts';

const BUCKET = 'workflow-store';
const PREFIX = 'backups/';
const ROLE = 'arn:aws:iam::123456789012:role/ecr-backup-workflow';

const moto = useMoto();
let s3: S3Client;
let sfn: SFNClient;

beforeAll(async () => {
  const config = { endpoint: moto.url, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  s3 = new S3Client({ ...config, forcePathStyle: true });
  sfn = new SFNClient(config);
});

/** Wipes moto and selects its Step Functions mode (see the file comment). */
async function freshMoto(execute: boolean) {
  await moto.reset();
  const response = await fetch(`${moto.url}/moto-api/config`, {
    method: 'POST',
    body: JSON.stringify({ stepfunctions: { execute_state_machine: execute } }),
  });
  expect(response.ok).toBe(true);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}

const cli = (args: string[]): Promise<CliResult> => runCli(args, { env: moto.env });

async function createStateMachine(name: string, definition: object, tags: Tag[] = []): Promise<string> {
  const created = await sfn.send(new CreateStateMachineCommand({ name, definition: JSON.stringify(definition), roleArn: ROLE, tags }));
  return created.stateMachineArn!;
}

const passThrough = { StartAt: 'Done', States: { Done: { Type: 'Pass', End: true } } };

/** The real workflow's shape: listing output in the store's terms, a DISTRIBUTED Map over batch refs. */
function workflowStandIn(options: { batchesKey: string; fail?: { error: string; cause: string } }) {
  return {
    StartAt: STATE.list,
    States: {
      [STATE.list]: {
        Type: 'Pass',
        Parameters: {
          'runId.$': '$$.Execution.Name',
          'mode.$': '$.mode',
          listing: {
            'runId.$': '$$.Execution.Name',
            'mode.$': '$.mode',
            startedAt: '2026-01-01T00:00:00.000Z',
            bucket: BUCKET,
            'batchesKey.$': `States.Format('${PREFIX}runs/{}/batches.json', $$.Execution.Name)`,
            batchCount: 3,
            itemCount: 7,
            unchangedCount: 0,
          },
        },
        Next: STATE.map,
      },
      [STATE.map]: {
        Type: 'Map',
        Label: 'CopyBatches',
        MaxConcurrency: 1,
        // A fixed key: the stand-in's listing does not write the run's batches.json.
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'JSON' },
          Parameters: { Bucket: BUCKET, Key: options.batchesKey },
        },
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: 'Back up batch',
          States: { 'Back up batch': { Type: 'Wait', Seconds: 1, End: true } },
        },
        ResultPath: null,
        Next: STATE.summarize,
      },
      [STATE.summarize]: options.fail
        ? { Type: 'Fail', Error: options.fail.error, Cause: options.fail.cause }
        : { Type: 'Pass', End: true },
    },
  };
}

function report(runId: string, overrides: Partial<RunReport> = {}): RunReport {
  return {
    runId,
    mode: 'backup',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:05:00.000Z',
    counts: { images: 7, copied: 4, unchanged: 3, failed: 0, planned: 0, bytesCopied: 3 * 1024 * 1024, bytesDeduplicated: 1024 },
    failures: [],
    results: [],
    ...overrides,
  };
}

async function putReport(value: RunReport) {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: PREFIX + runKeys.report(value.runId), Body: JSON.stringify(value) }));
}

async function executionsOf(stateMachineArn: string) {
  return (await sfn.send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? [];
}

describe('run (moto: executions stored, not executed)', () => {
  it('starts an execution whose input is the validated execution input', async () => {
    await freshMoto(false);
    const arn = await createStateMachine('ecr-backup-workflow', passThrough);

    const backup = await cli([
      'run',
      '--state-machine-arn',
      arn,
      '--mode',
      'backup',
      '--repositories',
      'team/*',
      '--tags',
      'v*',
      '--include-untagged',
      '--json',
    ]);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const started = JSON.parse(backup.stdout) as { executionArn: string; name: string; stateMachineArn: string };
    expect(started.name).toMatch(/^manual-backup-\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    expect(started.stateMachineArn).toBe(arn);
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(described.name).toBe(started.name);
    expect(JSON.parse(described.input!)).toEqual(
      parseExecutionInput({ mode: 'backup', repositories: ['team/*'], tags: ['v*'], includeUntagged: true }),
    );

    // Text output: the execution ARN alone; restore options become `asOf` and `target`.
    const restore = await cli([
      'run',
      '--state-machine-arn',
      arn,
      '--mode',
      'restore',
      '--as-of',
      '2026-01-31T12:00:00Z',
      '--target-region',
      'eu-west-1',
      '--target-account',
      '210987654321',
      '--repository-prefix',
      'restored/',
      '--dry-run',
      '--name',
      'restore-drill-1',
    ]);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.stdout.trim()).toMatch(/^arn:aws:states:us-east-1:123456789012:execution:ecr-backup-workflow:restore-drill-1$/);
    const restoreInput = JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: restore.stdout.trim() }))).input!);
    expect(restoreInput).toEqual({
      mode: 'restore',
      asOf: '2026-01-31T12:00:00Z',
      target: { region: 'eu-west-1', accountId: '210987654321', repositoryPrefix: 'restored/' },
      dryRun: true,
    });
  });

  it('refuses invalid input with exit 2 naming the field, and starts nothing', async () => {
    await freshMoto(false);
    const arn = await createStateMachine('ecr-backup-workflow', passThrough);
    const cases: Array<[string[], string]> = [
      [['--mode', 'sideways'], 'mode:'],
      [['--mode', 'backup', '--as-of', '2026-01-01T00:00:00Z'], 'asOf:'],
      [['--mode', 'restore', '--target-account', '1234'], 'target.accountId:'],
      [['--mode', 'backup', '--repositories', ''], 'repositories.0:'],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(['run', '--state-machine-arn', arn, ...args])));
    results.forEach((result, i) => {
      expect(result.exitCode, `${cases[i]![0].join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain(cases[i]![1]);
    });
    // No state machine given, or one that does not exist: usage errors too.
    const targets = await Promise.all([
      cli(['run', '--mode', 'backup']),
      cli(['run', '--mode', 'backup', '--state-machine-arn', arn.replace('ecr-backup-workflow', 'missing')]),
    ]);
    for (const result of targets) expect(result.exitCode, result.stderr).toBe(2);
    expect(targets[0]!.stderr).toContain('--stack NAME or --state-machine-arn');
    expect(targets[1]!.stderr).toContain('StateMachineDoesNotExist');
    expect(await executionsOf(arn)).toEqual([]);
  });

  it('--stack finds the state machine by the ecr-backup:stack-name tag the construct sets', async () => {
    await freshMoto(false);
    const stackTag = (stack: string): Tag[] => [{ key: STACK_NAME_TAG, value: stack }];
    const workflow = workflowStandIn({ batchesKey: 'unused.json' });
    const ours = await createStateMachine('StateMachineA1', workflow, stackTag('EcrBackupTest'));
    await createStateMachine('OtherStateMachine', passThrough, stackTag('EcrBackupTest')); // same stack, not the workflow
    await createStateMachine('StateMachineB2', workflow, stackTag('SomeOtherStack'));

    const result = await cli(['run', '--stack', 'EcrBackupTest', '--mode', 'backup', '--json']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).stateMachineArn).toBe(ours);
    expect(await executionsOf(ours)).toHaveLength(1);

    const missing = await cli(['runs', '--stack', 'NoSuchStack']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`${STACK_NAME_TAG}=NoSuchStack`);
  });

  it('--wait on an execution that gets stopped exits 1 with ABORTED (no map runs in this mode: no item counts)', async () => {
    await freshMoto(false);
    const arn = await createStateMachine('ecr-backup-workflow', passThrough);
    let exited: CliResult | undefined;
    const pending = cli([
      'run',
      '--state-machine-arn',
      arn,
      '--mode',
      'backup',
      '--name',
      'to-be-stopped',
      '--wait',
      '--poll-interval',
      '0.2',
    ]).then((r) => (exited = r));
    const executionArn = `${arn.replace(':stateMachine:', ':execution:')}:to-be-stopped`;
    for (let i = 0; (await executionsOf(arn)).length === 0; i++) {
      if (exited || i > 300) throw new Error(`the CLI did not start the execution: ${exited?.stderr ?? 'timed out'}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500)); // a few polls while RUNNING
    await sfn.send(new StopExecutionCommand({ executionArn }));
    const result = await pending;
    expect(result.exitCode, result.stderr).toBe(1);
    expect(result.stdout).toContain(executionArn);
    expect(result.stdout).toMatch(/^ABORTED after (?:\d+\.\d s|\d+ min \d+ s): to-be-stopped$/m);
    expect(result.stderr).toMatch(/^RUNNING (?:\d+\.\d s|\d+ min \d+ s)$/m);
    expect(result.stdout).toContain('no run report: the store is unknown');
  });
});

describe('runs (moto: executions stored, not executed)', () => {
  it('lists executions newest first, with counts from the reports in --store', async () => {
    await freshMoto(false);
    const arn = await createStateMachine('ecr-backup-workflow', passThrough);
    for (const name of ['run-1', 'run-2', 'run-3']) {
      await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name, input: '{}' }));
      await new Promise((r) => setTimeout(r, 20));
    }
    await putReport(
      report('run-2', { counts: { images: 9, copied: 5, unchanged: 3, failed: 1, planned: 0, bytesCopied: 2048, bytesDeduplicated: 0 } }),
    );

    const json = await cli(['runs', '--state-machine-arn', arn, '--store', `s3://${BUCKET}/${PREFIX}`, '--json']);
    expect(json.exitCode, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as {
      store: string;
      executions: Array<{ name: string; status: string; counts: RunReport['counts'] | null }>;
    };
    expect(listed.store).toBe(`s3://${BUCKET}/backups`);
    expect(listed.executions.map((e) => e.name)).toEqual(['run-3', 'run-2', 'run-1']);
    expect(listed.executions.map((e) => e.status)).toEqual(['RUNNING', 'RUNNING', 'RUNNING']);
    expect(listed.executions.map((e) => e.counts?.failed ?? null)).toEqual([null, 1, null]);

    const text = await cli(['runs', '--state-machine-arn', arn, '--store', `s3://${BUCKET}/${PREFIX}`, '--max', '2']);
    expect(text.exitCode, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+STARTED\s+DURATION\s+IMAGES\s+COPIED\s+UNCHANGED\s+FAILED/);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^run-2\s+RUNNING\s+\S+Z\s+9\s+5\s+3\s+1\s+2\.0 KiB$/);
  });
});

describe('run --wait (moto: executions executed, one per reset)', () => {
  it('follows the distributed map, exits 0 on SUCCEEDED and prints the report from the store it finds in the execution', async () => {
    await freshMoto(true);
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'fixtures/batches.json',
        Body: JSON.stringify([{ index: 0 }, { index: 1 }, { index: 2 }]),
      }),
    );
    const arn = await createStateMachine('ecr-backup-workflow', workflowStandIn({ batchesKey: 'fixtures/batches.json' }));
    await putReport(report('manual-ok'));

    const result = await cli([
      'run',
      '--state-machine-arn',
      arn,
      '--mode',
      'backup',
      '--name',
      'manual-ok',
      '--wait',
      '--poll-interval',
      '0.2',
    ]);
    expect(result.exitCode, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/^SUCCEEDED after (?:\d+\.\d s|\d+ min \d+ s): manual-ok$/m);
    expect(result.stdout).toContain(
      'backup manual-ok: 7 image(s): 4 copied, 3 unchanged, 0 failed; 3.0 MiB copied, 1.0 KiB already present',
    );
    expect(result.stdout).toContain(`report: s3://${BUCKET}/backups/runs/manual-ok/report.json`);
    // Non-TTY progress: one line per change of the map run's item counts.
    expect(result.stderr).toMatch(
      /^RUNNING (?:\d+\.\d s|\d+ min \d+ s) {2}Copy batches: [0-2]\/3 batch\(es\) \(7 image\(s\)\) done, 1 running$/m,
    );

    // `runs` without --store finds the store the same way.
    const runs = await cli(['runs', '--state-machine-arn', arn, '--json']);
    expect(runs.exitCode, runs.stderr).toBe(0);
    const listed = JSON.parse(runs.stdout) as {
      store: string;
      executions: Array<{ name: string; status: string; counts: { images: number } | null }>;
    };
    expect(listed.store).toBe(`s3://${BUCKET}/backups`);
    expect(listed.executions).toMatchObject([{ name: 'manual-ok', status: 'SUCCEEDED', counts: { images: 7 } }]);
  });

  it("exits 1 on FAILED, printing the error, the cause and the report's failures", async () => {
    await freshMoto(true);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'fixtures/batches.json', Body: JSON.stringify([{ index: 0 }]) }));
    const cause =
      '1 of 2 image(s) failed (50.0%, tolerance 0%); first: team/app:1.0: manifest unknown; report: runs/manual-bad/report.json';
    const arn = await createStateMachine(
      'ecr-backup-workflow',
      workflowStandIn({ batchesKey: 'fixtures/batches.json', fail: { error: 'RunFailedError', cause } }),
    );
    const failure = {
      repository: 'team/app',
      tag: '1.0',
      status: 'failed' as const,
      blobsCopied: 0,
      bytesCopied: 0,
      bytesDeduplicated: 0,
      durationMs: 5,
      error: 'team/app:1.0: manifest unknown',
    };
    await putReport(
      report('manual-bad', {
        counts: { images: 2, copied: 1, unchanged: 0, failed: 1, planned: 0, bytesCopied: 10, bytesDeduplicated: 0 },
        failures: [failure],
        results: [failure],
      }),
    );

    const result = await cli([
      'run',
      '--state-machine-arn',
      arn,
      '--mode',
      'backup',
      '--name',
      'manual-bad',
      '--store',
      `s3://${BUCKET}/${PREFIX}`,
      '--wait',
      '--poll-interval',
      '0.2',
      '--json',
    ]);
    expect(result.exitCode, `${result.stdout}\n${result.stderr}`).toBe(1);
    const outcome = JSON.parse(result.stdout) as {
      status: string;
      error: string;
      cause: string;
      counts: { failed: number };
      report: RunReport;
    };
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'RunFailedError', cause, counts: { failed: 1 } });
    expect(outcome.report.failures[0]!.error).toBe('team/app:1.0: manifest unknown');
    expect(result.stderr).toBe(''); // --json: no progress lines
  });
});
