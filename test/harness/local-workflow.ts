// The synthesized state machine, executed locally by a real ASL interpreter (aws-local-stepfunctions)
// with the real components behind its Task states:
//
//   lambda:invoke       -> the real handler (lambdas/*.ts) called in-process with the
//                          Lambda's environment from the template; LambdaInvoke's `{Payload}` result
//                          wrapping and its error shape (Error = errorType, Cause = the runtime's
//                          `{"errorType","errorMessage","trace"}` JSON) are emulated.
//   ecs:runTask.sync    -> the real worker (worker/main.ts) as a child process, with the command and
//                          environment the task definition and the container overrides give it; a
//                          non-zero exit fails the state with States.TaskFailed, as a stopped task does.
//   DISTRIBUTED Map     -> rewritten (aws-local-stepfunctions has no distributed maps): a Task
//                          `<map> (ItemReader)` that reads the ItemReader's JSON array from S3 (moto) at
//                          the evaluated Bucket/Key and parks it in the context object (so the state data
//                          stays exactly what AWS would carry), then an INLINE Map `<map>` over
//                          `$$.<that array>` with the same ItemSelector, ItemProcessor and MaxConcurrency,
//                          then a `<map> (ResultWriter)` Task with the Map's ResultPath, Catch and Next
//                          that applies the failure tolerance, the ResultWriter and the 256 KiB limit
//                          (see harness/distributed-map.ts). NOT emulated: child executions as
//                          executions of their own, ItemBatcher.
//   sns:publish         -> published to moto and recorded (LocalExecution.notifications).
//   Lambda timeout      -> the function's Timeout (or RunOptions.lambdaTimeoutMs) ends the state with
//                          Sandbox.Timedout, as Lambda does.
//
// Also worked around: aws-local-stepfunctions 3.0.0 mishandles `"ResultPath": "$"` (see
// normalizeResultPaths). The AWS services are moto (S3, ECR control plane, SNS, CloudWatch) via `awsEnv`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PublishCommand } from '@aws-sdk/client-sns';
import type { CfnResource, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { ExecutionAbortedError, ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { callContext, installCallRecorder, type Component, type RecordedCall } from './aws-calls.ts';
import {
  LOCAL_CHILD_FAILED,
  LOCAL_CHILD_RESULT,
  LOCAL_CHILD_SUFFIXES,
  LOCAL_WRITER,
  MapRunState,
  PAYLOAD_LIMIT_BYTES,
  StateError,
  oversizedOutput,
} from './distributed-map.ts';
import { LIST_HANDLER_ENTRY, REPO_ROOT, SUMMARIZE_HANDLER_ENTRY } from '../../infra/assets.ts';
import {
  concreteAsl,
  FAKE_ACCOUNT,
  FAKE_REGION,
  resolveValue,
  synthesizeTemplate,
  workerLaunchForRunTask,
  type CfnTemplate,
} from './synthesized-workflow.ts';
import type { EcrBackupContext } from '../../infra/context.ts';
import { ENV } from '../../schema/environment.ts';
import { handler as listImagesHandler } from '../../lambdas/list-images.ts';
import { handler as summarizeHandler } from '../../lambdas/summarize.ts';
import { handler as pruneHandler } from '../../lambdas/prune.ts';

// aws-local-stepfunctions 3 targets node 22; on node 20 it needs Promise.withResolvers.
const PromiseWithResolvers = Promise as unknown as { withResolvers?: () => unknown };
PromiseWithResolvers.withResolvers ??= function withResolvers<T>() {
  let resolve!: (value: T | PromiseLike<T>) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
type States = Record<string, JsonObject>;
type EventLog = {
  type: string;
  state?: { name: string; type: string; input?: Json; output?: Json };
  Error?: string;
  Cause?: unknown;
  index?: number;
};

/** A Lambda handler as the workflow calls it: the event (the state's Payload) in, the result out. */
type LambdaHandler = (event: never) => Promise<unknown>;

/** The handler modules by the entry path the stack bundles them from. */
const HANDLERS_BY_ENTRY: Record<string, LambdaHandler> = {
  [LIST_HANDLER_ENTRY]: listImagesHandler as LambdaHandler,
  [SUMMARIZE_HANDLER_ENTRY]: summarizeHandler as LambdaHandler,
};

// Workers still running when this process exits (a test timed out) are killed with it.
const liveWorkers = new Set<ReturnType<typeof spawn>>();
process.once('exit', () => {
  for (const child of liveWorkers) child.kill('SIGKILL');
});

const LOCAL_ITEMS_KEY = 'LocalDistributedMapItems';
const READER_SUFFIX = ' (ItemReader)';

export interface LocalWorkflowOptions {
  /** The `ecrBackup` context value the stack is synthesized with (the deployment's configuration). */
  config: EcrBackupContext;
  /** Stands in for the AWS account: moto's endpoint and dummy credentials (TestMoto.env). */
  awsEnv: Record<string, string>;
  /** Changes the deployed ASL before the local rewrite (e.g. to show what a definition without a ResultWriter does). */
  transformAsl?: (asl: { StartAt: string; States: States }) => void;
}

export interface RunOptions {
  /** The store bucket (exists in moto); replaces the stack's bucket everywhere (STORE_URL). */
  bucket: string;
  /** Execution name (= run id); default: a fresh unique name. */
  name?: string;
  /** Added to the in-process Lambdas' environment (e.g. ECR_BACKUP_ECR_REGISTRY_URL). */
  lambdaEnv?: Record<string, string>;
  /** Added to every worker's environment, or per mode. */
  workerEnv?: Record<string, string> | ((mode: 'backup' | 'restore') => Record<string, string>);
  /** Lambda timeout for every function (default: each function's Timeout from the template). */
  lambdaTimeoutMs?: number;
  /**
   * Scripted Fargate tasks instead of the worker process (tests of the workflow's own limits, named
   * so): the stopped task's exit code and, for a failure, the DescribeTasks task object as its cause.
   */
  scriptedTask?: (launch: { mode: 'backup' | 'restore'; batchKey: string }) => { exitCode: number; task?: JsonObject };
}

interface WorkerRun {
  mode: 'backup' | 'restore';
  batchKey: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** The worker's stdout and stderr (its JSON log lines), interleaved. */
  output: string;
}

interface LambdaInvocation {
  state: string;
  functionName: string;
  event: unknown;
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
}

export interface LocalExecution {
  name: string;
  executionArn: string;
  status: 'SUCCEEDED' | 'FAILED';
  /** The execution's output (SUCCEEDED). */
  output?: unknown;
  /** Error and Cause of a FAILED execution, as DescribeExecution would give them. */
  error?: string;
  cause?: string;
  /** For a failure raised by a Lambda: the `errorMessage` inside the Cause JSON. */
  causeMessage?: string;
  /** Every event the interpreter logged, Map iterations included. */
  events: EventLog[];
  /** Names of the states entered, in order (Map iterations included). */
  statesEntered: string[];
  workers: WorkerRun[];
  lambdas: LambdaInvocation[];
  /** Messages the state machine itself published (sns:publish states). */
  notifications: Array<{ state: string; topicArn: string; subject?: string; message: string }>;
  durationMs: number;
}

export interface LocalWorkflow {
  template: CfnTemplate;
  /** The deployed ASL (fake ARNs), before the local rewrite. */
  asl: StateMachineDefinition;
  /** What actually runs: distributed maps rewritten to ItemReader task + INLINE map. */
  localAsl: StateMachineDefinition;
  stateMachineArn: string;
  run(input: unknown, options: RunOptions): Promise<LocalExecution>;
  /** The Lambda environment a run would use (STORE_URL etc.), by function name. */
  lambdaEnvironment(functionName: string, bucket: string): Record<string, string>;
  /** Every AWS call of every run so far, by the component (role) that made it. */
  calls: RecordedCall[];
  /** The stores' buckets of the runs so far (they stand for the template's store bucket). */
  runBuckets: Set<string>;
  /** Each component's role, as a logical id in `template`. */
  roleOf: Partial<Record<Component, string>>;
}

const PRELOAD = path.join(path.dirname(new URL(import.meta.url).pathname), 'record-aws-calls-preload.ts');

/** Synthesizes the stack once (~6-10 s) and prepares what the fakes in its ASL refer to (SNS topics). */
export async function createLocalWorkflow(options: LocalWorkflowOptions): Promise<LocalWorkflow> {
  const { stack, template } = synthesizeTemplate({ context: { ecrBackup: options.config }, nag: false });
  const asl = concreteAsl(template) as unknown as StateMachineDefinition;
  options.transformAsl?.(asl as unknown as { StartAt: string; States: States });
  const localAsl = rewriteDistributedMaps(
    structuredClone(asl) as unknown as { StartAt: string; States: States },
  ) as unknown as StateMachineDefinition;
  normalizeResultPaths(localAsl as unknown as { States: States });
  const smResource = Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine')!;
  const stateMachineArn = String(resolveValue(template, { Ref: smResource[0] }));
  const stateMachineName = stateMachineArn.split(':').at(-1)!;

  // The summary Lambda publishes to the stack's topic: make it exist in moto under its fake ARN.
  const sns = new SNSClient(sdkConfig(options.awsEnv));
  for (const [logicalId, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::SNS::Topic') continue;
    const arn = String(resolveValue(template, { Ref: logicalId }));
    const created = await sns.send(new CreateTopicCommand({ Name: arn.split(':').at(-1)! }));
    if (created.TopicArn !== arn) throw new Error(`moto created topic ${created.TopicArn}, the ASL/env expect ${arn}`);
  }

  const lambdaFunctions = new Map<string, string>(); // fake function ARN -> logical id
  for (const [logicalId, r] of Object.entries(template.Resources)) {
    if (r.Type === 'AWS::Lambda::Function')
      lambdaFunctions.set(String(resolveValue(template, { 'Fn::GetAtt': [logicalId, 'Arn'] })), logicalId);
  }
  // Which code each function runs: a state calling the wrong function runs the wrong handler here too.
  const handlerOf = new Map<string, LambdaHandler>([
    [logicalIdOf(stack, stack.backup.listFunction), HANDLERS_BY_ENTRY[LIST_HANDLER_ENTRY]!],
    [logicalIdOf(stack, stack.backup.summarizeFunction), HANDLERS_BY_ENTRY[SUMMARIZE_HANDLER_ENTRY]!],
    // The optional prune step (EcrBackup `prune` prop).
    ...(stack.backup.pruneFunction
      ? [[logicalIdOf(stack, stack.backup.pruneFunction), pruneHandler as LambdaHandler] as [string, LambdaHandler]]
      : []),
  ]);
  const functionId = (functionName: string) => {
    const logicalId =
      lambdaFunctions.get(functionName) ?? [...lambdaFunctions.entries()].find(([arn]) => arn.endsWith(`:${functionName}`))?.[1];
    if (!logicalId) throw new Error(`no Lambda function ${functionName} in the template`);
    return logicalId;
  };
  installCallRecorder();
  const calls: RecordedCall[] = [];
  const runBuckets = new Set<string>();
  const sink = (call: RecordedCall) => void calls.push(call);
  const asComponent =
    <A extends unknown[], R>(component: Component, fn: (...args: A) => Promise<R>) =>
    (...args: A) =>
      callContext.run({ component, sink }, () => fn(...args));
  const roleId = (construct: IConstruct | undefined) => (construct ? logicalIdOf(stack, construct) : undefined);
  const roleOf: Partial<Record<Component, string>> = {
    list: roleId(stack.backup.listFunction.role),
    summarize: roleId(stack.backup.summarizeFunction.role),
    prune: roleId(stack.backup.pruneFunction?.role),
    backup: roleId(stack.backup.backupTaskDefinition.taskRole),
    restore: roleId(stack.backup.restoreTaskRole),
    stateMachine: roleId(stack.backup.stateMachine.role),
  };
  const componentOfFunction = new Map<string, Component>([
    [logicalIdOf(stack, stack.backup.listFunction), 'list'],
    [logicalIdOf(stack, stack.backup.summarizeFunction), 'summarize'],
    ...(stack.backup.pruneFunction ? [[logicalIdOf(stack, stack.backup.pruneFunction), 'prune'] as [string, Component]] : []),
  ]);
  const bucketOverrides = (bucket: string) => Object.fromEntries(storeBucketIds(template).map((id) => [id, bucket]));

  function lambdaEnvironment(functionName: string, bucket: string): Record<string, string> {
    const logicalId = functionId(functionName);
    const env = template.Resources[logicalId]!.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined;
    const resolved = resolveValue(template, env?.Variables ?? {}, { overrides: bucketOverrides(bucket) }) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, String(v)]));
  }

  async function run(input: unknown, runOptions: RunOptions): Promise<LocalExecution> {
    const started = Date.now();
    const name = runOptions.name ?? `wf-${started}-${randomBytes(3).toString('hex')}`;
    const executionArn = `arn:aws:states:${FAKE_REGION}:${FAKE_ACCOUNT}:execution:${stateMachineName}:${name}`;
    const workers: WorkerRun[] = [];
    const lambdas: LambdaInvocation[] = [];
    const children = new Set<ReturnType<typeof spawn>>(); // this execution's running workers
    const localItems: Record<string, Json[]> = {};
    const s3 = new S3Client({ ...sdkConfig(options.awsEnv), forcePathStyle: true });
    const mapRun = new MapRunState();
    runBuckets.add(runOptions.bucket);
    const notifications: LocalExecution['notifications'] = [];

    const invokeLambda =
      (stateName: string) =>
      async (parameters: Json): Promise<Json> => {
        const params = parameters as { FunctionName: string; Payload?: Json };
        const handler = handlerOf.get(functionId(params.FunctionName));
        if (!handler) throw new Error(`${stateName}: no local handler for ${params.FunctionName}`);
        // The event crosses a JSON boundary both ways, as it does in Lambda.
        const event = JSON.parse(JSON.stringify(params.Payload ?? {})) as unknown;
        const invocation: LambdaInvocation = { state: stateName, functionName: params.FunctionName, event };
        lambdas.push(invocation);
        const env = {
          ...options.awsEnv,
          AWS_REGION: FAKE_REGION,
          AWS_LAMBDA_FUNCTION_NAME: params.FunctionName.split(':').at(-1)!,
          ...lambdaEnvironment(params.FunctionName, runOptions.bucket),
          ...runOptions.lambdaEnv,
        };
        const restore = withEnv(env);
        const timeoutSeconds = Number(template.Resources[functionId(params.FunctionName)]!.Properties?.Timeout ?? 3);
        const timeoutMs = runOptions.lambdaTimeoutMs ?? timeoutSeconds * 1000;
        let timer: NodeJS.Timeout | undefined;
        let result: unknown;
        try {
          const invocationPromise = asComponent(componentOfFunction.get(functionId(params.FunctionName))!, handler)(event as never);
          invocationPromise.catch(() => undefined); // a timed-out invocation may fail later, unobserved
          result = await Promise.race([
            invocationPromise,
            new Promise((_resolve, reject) => {
              timer = setTimeout(
                () => reject(new StateError('Sandbox.Timedout', `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`)),
                timeoutMs,
              );
            }),
          ]);
        } catch (error) {
          const e = error instanceof Error ? error : new Error(String(error));
          invocation.error = { errorType: e.name, errorMessage: e.message };
          // What Step Functions reports for a function error: Error = errorType, Cause = the
          // runtime's error JSON.
          throw new StateError(e.name, JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') }));
        } finally {
          clearTimeout(timer);
          restore();
        }
        const payload = (result === undefined ? null : JSON.parse(JSON.stringify(result))) as Json;
        invocation.result = payload;
        const output: JsonObject = { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
        if (Buffer.byteLength(JSON.stringify(output)) > PAYLOAD_LIMIT_BYTES) {
          throw new StateError('States.DataLimitExceeded', `the result of ${stateName} exceeds ${PAYLOAD_LIMIT_BYTES} bytes`);
        }
        return output;
      };

    const runTask =
      (stateName: string) =>
      async (parameters: Json): Promise<Json> => {
        const params = parameters as Parameters<typeof workerLaunchForRunTask>[1] & { LaunchType?: string; Cluster?: string };
        if (params.LaunchType !== 'FARGATE' || !params.Cluster) throw new Error(`${stateName}: expected a FARGATE RunTask with a Cluster`);
        // First which task definition (backup or restore) the parameters pick, for per-mode test env.
        const probe = workerLaunchForRunTask(template, params, { overrides: bucketOverrides(runOptions.bucket) });
        const extra = typeof runOptions.workerEnv === 'function' ? runOptions.workerEnv(probe.mode) : (runOptions.workerEnv ?? {});
        const launch = workerLaunchForRunTask(template, params, {
          overrides: bucketOverrides(runOptions.bucket),
          env: { ...options.awsEnv, ...extra },
        });
        const startedAt = Date.now();
        if (runOptions.scriptedTask) {
          const scripted = runOptions.scriptedTask({ mode: launch.mode, batchKey: launch.env[ENV.BATCH_KEY]! });
          workers.push({
            mode: launch.mode,
            batchKey: launch.env[ENV.BATCH_KEY]!,
            exitCode: scripted.exitCode,
            signal: null,
            durationMs: 0,
            output: '(scripted)',
          });
          if (scripted.exitCode !== 0)
            throw new StateError('States.TaskFailed', JSON.stringify(scripted.task ?? { ExitCode: scripted.exitCode }));
          return scripted.task ?? {};
        }
        const [command, ...args] = launch.localCommand as [string, ...string[]];
        // Only what the container would have (task definition + overrides) plus the AWS stand-ins;
        // PATH/HOME so node, tsx and registry tools resolve; the call recorder (harness/aws-calls.ts).
        const callLog = path.join(os.tmpdir(), `ecr-backup-aws-calls-${randomBytes(6).toString('hex')}.jsonl`);
        const env = {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          ...launch.env,
          ECR_BACKUP_TEST_AWS_CALLS: callLog,
          ECR_BACKUP_TEST_COMPONENT: launch.mode,
        };
        const child = spawn(command, [...args.slice(0, 2), '--import', PRELOAD, ...args.slice(2)], {
          cwd: REPO_ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.add(child);
        liveWorkers.add(child);
        let output = '';
        const collect = (chunk: Buffer) => {
          output += chunk.toString('utf8');
          if (output.length > 200_000) output = output.slice(-100_000);
        };
        child.stdout.on('data', collect);
        child.stderr.on('data', collect);
        const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
          child.once('error', reject);
          child.once('close', (c, s) => resolve({ code: c, signal: s }));
        });
        children.delete(child);
        liveWorkers.delete(child);
        if (fs.existsSync(callLog)) {
          for (const line of fs.readFileSync(callLog, 'utf8').split('\n')) if (line) calls.push(JSON.parse(line) as RecordedCall);
          fs.rmSync(callLog, { force: true });
        }
        const worker: WorkerRun = {
          mode: launch.mode,
          batchKey: launch.env[ENV.BATCH_KEY]!,
          exitCode: code,
          signal,
          durationMs: Date.now() - startedAt,
          output,
        };
        workers.push(worker);
        // A DescribeTasks-shaped result of the stopped task.
        const task: JsonObject = {
          ClusterArn: params.Cluster,
          TaskDefinitionArn: launch.taskDefinitionArn,
          LaunchType: 'FARGATE',
          LastStatus: 'STOPPED',
          StopCode: 'EssentialContainerExited',
          StoppedReason: 'Essential container in task exited',
          Containers: [{ Name: launch.containerName, LastStatus: 'STOPPED', ExitCode: code ?? 137 }],
        };
        if (code !== 0) throw new StateError('States.TaskFailed', JSON.stringify(task));
        return task;
      };

    const readItems =
      (stateName: string, key: string, readerConfig: JsonObject | undefined) =>
      async (parameters: Json): Promise<Json> => {
        const { Bucket, Key } = parameters as { Bucket: string; Key: string };
        let items: unknown;
        try {
          const object = await s3.send(new GetObjectCommand({ Bucket, Key }));
          items = JSON.parse(await object.Body!.transformToString('utf8'));
        } catch (error) {
          throw new StateError(
            'States.ItemReaderFailed',
            `${stateName}: cannot read items from s3://${Bucket}/${Key}: ${(error as Error).message}`,
          );
        }
        if (!Array.isArray(items))
          throw new StateError('States.ItemReaderFailed', `${stateName}: s3://${Bucket}/${Key} is not a JSON array`);
        const max = typeof readerConfig?.MaxItems === 'number' ? readerConfig.MaxItems : undefined;
        localItems[key] = (max !== undefined ? items.slice(0, max) : items) as Json[];
        mapRun.reset(key);
        return null;
      };

    const publish =
      (stateName: string) =>
      async (parameters: Json): Promise<Json> => {
        const { TopicArn, Message, Subject } = parameters as { TopicArn: string; Message: string; Subject?: string };
        const published = await new SNSClient(sdkConfig(options.awsEnv)).send(new PublishCommand({ TopicArn, Message, Subject }));
        notifications.push({ state: stateName, topicArn: TopicArn, message: Message, ...(Subject ? { subject: Subject } : {}) });
        return { MessageId: published.MessageId ?? null };
      };

    const taskResourceLocalHandlers: Record<string, (input: Json) => Promise<Json>> = {};
    forEachState(localAsl as unknown as { States: States }, (stateName, state) => {
      if (state.Type !== 'Task') return;
      const resource = String(state.Resource);
      if (resource === 'arn:aws:states:::lambda:invoke') taskResourceLocalHandlers[stateName] = invokeLambda(stateName);
      else if (resource === 'arn:aws:states:::ecs:runTask.sync') taskResourceLocalHandlers[stateName] = runTask(stateName);
      else if (resource === 'arn:aws:states:::sns:publish')
        taskResourceLocalHandlers[stateName] = asComponent('stateMachine', publish(stateName));
      else if (state.Comment === LOCAL_CHILD_RESULT) taskResourceLocalHandlers[stateName] = mapRun.childResult(String(state.MapKey));
      else if (state.Comment === LOCAL_CHILD_FAILED) taskResourceLocalHandlers[stateName] = mapRun.childFailed(String(state.MapKey));
      else if (state.Comment === LOCAL_WRITER)
        taskResourceLocalHandlers[stateName] = asComponent(
          'stateMachine',
          mapRun.writer(stateName, state, s3, stateMachineArn.replace(':stateMachine:', ':mapRun:')),
        );
      else if (state.Comment === LOCAL_READER_COMMENT) {
        const key = String((state as { ItemsKey?: Json }).ItemsKey);
        taskResourceLocalHandlers[stateName] = asComponent(
          'stateMachine',
          readItems(stateName, key, (state as { ReaderConfig?: JsonObject }).ReaderConfig),
        );
      } else throw new Error(`state ${JSON.stringify(stateName)}: no local implementation of ${resource}`);
    });

    const machine = new StateMachine(stripLocalFields(localAsl), { validationOptions: { checkArn: false } });
    const execution = machine.run(input as Json, {
      overrides: { taskResourceLocalHandlers },
      context: {
        Execution: { Id: executionArn, Name: name, RoleArn: `arn:aws:iam::${FAKE_ACCOUNT}:role/local` },
        StateMachine: { Id: stateMachineArn, Name: stateMachineName },
        [LOCAL_ITEMS_KEY]: localItems,
      },
    });
    mapRun.abort = () => execution.abort();
    const events: EventLog[] = [];
    const collecting = (async () => {
      for await (const event of execution.eventLogs) events.push(event as EventLog);
    })();
    const finished = () => ({
      name,
      executionArn,
      events,
      statesEntered: events
        .filter((e) => e.type === 'StateEntered' && !LOCAL_CHILD_SUFFIXES.some((x) => e.state!.name.endsWith(x)))
        .map((e) => e.state!.name),
      workers,
      lambdas,
      notifications,
      durationMs: Date.now() - started,
    });
    try {
      const output = await execution.result;
      await collecting;
      const oversized = oversizedOutput(events);
      if (oversized) return { ...finished(), status: 'FAILED', error: oversized.error, cause: oversized.cause };
      return { ...finished(), status: 'SUCCEEDED', output };
    } catch (error) {
      if (error instanceof ExecutionAbortedError && mapRun.fatal) {
        await collecting;
        return { ...finished(), status: 'FAILED', error: mapRun.fatal.error, cause: mapRun.fatal.cause };
      }
      if (!(error instanceof ExecutionError)) throw error;
      await collecting;
      const failure = events.find((e) => e.type === 'ExecutionFailed');
      const cause = typeof failure?.Cause === 'string' ? failure.Cause : JSON.stringify(failure?.Cause ?? null);
      let causeMessage: string | undefined;
      try {
        causeMessage = (JSON.parse(cause) as { errorMessage?: string }).errorMessage;
      } catch {
        causeMessage = undefined;
      }
      return { ...finished(), status: 'FAILED', error: failure?.Error, cause, causeMessage };
    } finally {
      for (const child of children) if (child.pid && child.exitCode === null) child.kill('SIGKILL');
    }
  }

  return { template, asl, localAsl, stateMachineArn, run, lambdaEnvironment, calls, runBuckets, roleOf };
}

function logicalIdOf(stack: Stack, construct: IConstruct): string {
  return stack.resolve((construct.node.defaultChild as CfnResource).logicalId) as string;
}

function sdkConfig(awsEnv: Record<string, string>) {
  return {
    endpoint: awsEnv.AWS_ENDPOINT_URL,
    region: awsEnv.AWS_REGION ?? FAKE_REGION,
    credentials: { accessKeyId: awsEnv.AWS_ACCESS_KEY_ID ?? 'testing', secretAccessKey: awsEnv.AWS_SECRET_ACCESS_KEY ?? 'testing' },
  };
}

/** Sets `env` on process.env, unsets the other ENV.* variables (a Lambda sees only its own); returns the undo. */
function withEnv(env: Record<string, string>): () => void {
  const keys = new Set([...Object.keys(env), ...Object.values(ENV)]);
  const previous = new Map([...keys].map((k) => [k, process.env[k]]));
  for (const k of keys) {
    if (k in env) process.env[k] = env[k];
    else delete process.env[k];
  }
  return () => {
    for (const [k, v] of previous) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Logical ids of the buckets STORE_URL refers to (the Lambdas' and task definitions' environment). */
function storeBucketIds(template: CfnTemplate): string[] {
  const ids = new Set<string>();
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const ref = (v as { Ref?: unknown }).Ref;
      if (typeof ref === 'string' && template.Resources[ref]?.Type === 'AWS::S3::Bucket') ids.add(ref);
      Object.values(v).forEach(visit);
    }
  };
  for (const r of Object.values(template.Resources)) {
    const vars = (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables;
    if (r.Type === 'AWS::Lambda::Function' && vars?.[ENV.STORE_URL]) visit(vars[ENV.STORE_URL]);
    if (r.Type === 'AWS::ECS::TaskDefinition') {
      for (const c of (r.Properties?.ContainerDefinitions ?? []) as Array<{ Environment?: Array<{ Name: string; Value: unknown }> }>) {
        for (const e of c.Environment ?? []) if (e.Name === ENV.STORE_URL) visit(e.Value);
      }
    }
  }
  if (ids.size === 0) throw new Error(`no bucket found in ${ENV.STORE_URL}`);
  return [...ids];
}

const LOCAL_READER_COMMENT = 'local: the distributed Map ItemReader';

/** Calls `fn` for every state, descending into Map item processors and Parallel branches. */
function forEachState(definition: { States: States }, fn: (name: string, state: JsonObject) => void): void {
  for (const [name, state] of Object.entries(definition.States)) {
    fn(name, state);
    const processor = (state.ItemProcessor ?? state.Iterator) as { States: States } | undefined;
    if (processor) forEachState(processor, fn);
    for (const branch of (state.Branches ?? []) as unknown as Array<{ States: States }>) forEachState(branch, fn);
  }
}

/**
 * Rewrites each DISTRIBUTED Map `M` into a Task `M (ItemReader)` (same InputPath, Retry and Catch;
 * it reads the items and parks them in the context object, leaving the state data untouched) and an
 * INLINE Map `M` that iterates over them with the same ItemSelector, ItemProcessor, MaxConcurrency,
 * Retry; then a Task `M (ResultWriter)` with the Map's ResultPath, Catch and Next (tolerance,
 * ResultWriter, payload limit: harness/distributed-map.ts). Transitions into `M` go to the reader.
 */
function rewriteDistributedMaps<T extends { StartAt: string; States: States }>(definition: T, counter = { n: 0 }): T {
  const renames = new Map<string, string>();
  for (const [name, state] of Object.entries(definition.States)) {
    const processor = (state.ItemProcessor ?? state.Iterator) as
      | { StartAt: string; States: States; ProcessorConfig?: JsonObject }
      | undefined;
    if (state.Type !== 'Map' || !processor) continue;
    rewriteDistributedMaps(processor, counter);
    if (processor.ProcessorConfig?.Mode !== 'DISTRIBUTED') continue;
    if (state.ItemBatcher) throw new Error(`${name}: ItemBatcher is not emulated`);
    const reader = state.ItemReader as { Resource: string; Parameters: JsonObject; ReaderConfig?: JsonObject } | undefined;
    if (reader?.Resource !== 'arn:aws:states:::s3:getObject' || (reader.ReaderConfig?.InputType ?? 'JSON') !== 'JSON') {
      throw new Error(`${name}: only a JSON ItemReader from s3:getObject is emulated`);
    }
    const key = `m${counter.n++}`;
    const readerName = name + READER_SUFFIX;
    const readerState: JsonObject = {
      Type: 'Task',
      Comment: LOCAL_READER_COMMENT,
      Resource: reader.Resource,
      Parameters: reader.Parameters,
      ResultPath: null,
      Next: name,
      ItemsKey: key,
      ...(reader.ReaderConfig ? { ReaderConfig: reader.ReaderConfig } : {}),
      ...(state.InputPath !== undefined ? { InputPath: state.InputPath } : {}),
      ...(state.Retry ? { Retry: state.Retry } : {}),
      ...(state.Catch ? { Catch: state.Catch } : {}),
    };
    for (const field of ['ResultSelector', 'OutputPath', 'ToleratedFailurePercentagePath', 'ToleratedFailureCountPath']) {
      if (state[field] !== undefined) throw new Error(`${name}: ${field} is not emulated`);
    }
    // The writer takes the Map's place for what follows the iterations (see harness/distributed-map.ts).
    const writer = state.ResultWriter as { Parameters?: JsonObject } | undefined;
    const writerName = `${name} (ResultWriter)`;
    const writerState: JsonObject = {
      Type: 'Task',
      Comment: LOCAL_WRITER,
      Resource: 'arn:aws:states:::local:result-writer',
      Parameters: writer?.Parameters ?? {},
      MapKey: key,
      HasResultWriter: writer !== undefined,
      ...(state.ResultPath !== undefined ? { ResultPath: state.ResultPath } : {}),
      ...(state.Catch ? { Catch: state.Catch } : {}),
      ...(typeof state.ToleratedFailurePercentage === 'number' ? { ToleratedFailurePercentage: state.ToleratedFailurePercentage } : {}),
      ...(typeof state.ToleratedFailureCount === 'number' ? { ToleratedFailureCount: state.ToleratedFailureCount } : {}),
      ...(state.Label !== undefined ? { Label: state.Label } : {}),
      ...(state.End ? { End: true } : { Next: state.Next! }),
    };
    for (const field of [
      'ItemReader',
      'ItemBatcher',
      'ResultWriter',
      'ToleratedFailurePercentage',
      'ToleratedFailureCount',
      'Label',
      'ItemsPath',
      'End',
    ]) {
      delete state[field];
    }
    state.ItemsPath = `$$.${LOCAL_ITEMS_KEY}.${key}`;
    state.ResultPath = null;
    state.Next = writerName;
    // Each child runs inside a Parallel whose Catch records a failure instead of ending the Map.
    const child = `${name} (local child)`;
    state.ItemProcessor = {
      ProcessorConfig: { Mode: 'INLINE' },
      StartAt: child,
      States: {
        [child]: {
          Type: 'Parallel',
          Branches: [{ StartAt: processor.StartAt, States: processor.States }] as unknown as Json,
          OutputPath: '$[0]',
          Next: `${name} (local child result)`,
          Catch: [{ ErrorEquals: ['States.ALL'], Next: `${name} (local child failed)` }],
        },
        [`${name} (local child result)`]: {
          Type: 'Task',
          Comment: LOCAL_CHILD_RESULT,
          Resource: 'arn:aws:states:::local:child',
          MapKey: key,
          End: true,
        },
        [`${name} (local child failed)`]: {
          Type: 'Task',
          Comment: LOCAL_CHILD_FAILED,
          Resource: 'arn:aws:states:::local:child',
          MapKey: key,
          End: true,
        },
      },
    } as unknown as Json;
    definition.States[readerName] = readerState;
    definition.States[writerName] = writerState;
    renames.set(name, readerName);
  }
  if (renames.size === 0) return definition;
  const target = (next: string) => renames.get(next) ?? next;
  definition.StartAt = target(definition.StartAt);
  for (const [name, state] of Object.entries(definition.States)) {
    const own = (name.endsWith(READER_SUFFIX) && renames.get(name.slice(0, -READER_SUFFIX.length)) === name) || renames.has(name);
    if (typeof state.Next === 'string' && !own) state.Next = target(state.Next);
    if (typeof state.Default === 'string') state.Default = target(state.Default);
    for (const choice of (state.Choices ?? []) as JsonObject[]) if (typeof choice.Next === 'string') choice.Next = target(choice.Next);
    for (const c of (state.Catch ?? []) as JsonObject[]) if (typeof c.Next === 'string') c.Next = target(c.Next);
  }
  return definition;
}

/**
 * aws-local-stepfunctions 3.0.0 treats `"ResultPath": "$"` as a key named "$" instead of "replace
 * the input with the result"; an absent ResultPath means the same in the ASL spec, so drop it.
 */
function normalizeResultPaths(definition: { States: States }): void {
  forEachState(definition, (_name, state) => {
    if (state.ResultPath === '$') delete state.ResultPath;
    for (const c of (state.Catch ?? []) as JsonObject[]) if (c.ResultPath === '$') delete c.ResultPath;
  });
}

/** Drops the harness's bookkeeping fields (ItemsKey, ReaderConfig on the reader task) before validation. */
function stripLocalFields(definition: StateMachineDefinition): StateMachineDefinition {
  const copy = structuredClone(definition) as unknown as { States: States };
  forEachState(copy, (_name, state) => {
    if (state.Comment === LOCAL_READER_COMMENT) {
      delete state.ItemsKey;
      delete state.ReaderConfig;
    }
    for (const field of ['MapKey', 'HasResultWriter', 'ToleratedFailurePercentage', 'ToleratedFailureCount', 'Label']) {
      if (state.Type === 'Task' && field in state) delete state[field];
    }
  });
  return copy as unknown as StateMachineDefinition;
}
