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
// normalizeResultPaths in harness/local-asl.ts). The AWS services are moto (S3, ECR control plane, SNS, CloudWatch) via `awsEnv`.
import type { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
  StateError,
  oversizedOutput,
} from './distributed-map.ts';
import { LIST_HANDLER_ENTRY, SUMMARIZE_HANDLER_ENTRY } from '../../infra/assets.ts';
import { concreteAsl, FAKE_ACCOUNT, FAKE_REGION, resolveValue, synthesizeTemplate, type CfnTemplate } from './synthesized-workflow.ts';
import { ENV } from '../../schema/environment.ts';
import { handler as listImagesHandler } from '../../lambdas/list-images.ts';
import { handler as summarizeHandler } from '../../lambdas/summarize.ts';
import { handler as pruneHandler } from '../../lambdas/prune.ts';
import {
  forEachState,
  LOCAL_ITEMS_KEY,
  LOCAL_READER_COMMENT,
  normalizeResultPaths,
  rewriteDistributedMaps,
  stripLocalFields,
} from './local-asl.ts';
import { lambdaInvoker } from './local-lambda.ts';
import { taskLauncher } from './local-task.ts';
import type {
  EventLog,
  Json,
  JsonObject,
  LambdaInvocation,
  LocalExecution,
  LocalWorkflow,
  LocalWorkflowOptions,
  RunOptions,
  States,
  WorkerRun,
} from './local-workflow-types.ts';

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
/** A Lambda handler as the workflow calls it: the event (the state's Payload) in, the result out. */
type LambdaHandler = (event: never) => Promise<unknown>;

/** The handler modules by the entry path the stack bundles them from. */
const HANDLERS_BY_ENTRY: Record<string, LambdaHandler> = {
  [LIST_HANDLER_ENTRY]: listImagesHandler as LambdaHandler,
  [SUMMARIZE_HANDLER_ENTRY]: summarizeHandler as LambdaHandler,
};

/**
 * Synthesizes the stack once (~3-5 s: the handlers run in-process, so the Lambdas are not bundled) and
 * prepares what the fakes in its ASL refer to (SNS topics).
 */
export async function createLocalWorkflow(options: LocalWorkflowOptions): Promise<LocalWorkflow> {
  const { stack, template } = synthesizeTemplate({ context: { ecrBackup: options.config }, nag: false, bundle: false });
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
    const invokeLambda = lambdaInvoker({
      template,
      awsEnv: options.awsEnv,
      runOptions,
      handlerOf,
      functionId,
      lambdaEnvironment,
      componentOfFunction,
      asComponent,
      lambdas,
    });
    const runTask = taskLauncher({ template, awsEnv: options.awsEnv, runOptions, bucketOverrides, workers, children, calls });

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
