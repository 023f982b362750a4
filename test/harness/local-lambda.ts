// Lambda tasks of the local workflow: the real handler (lambdas/*.ts) called in-process with the
// function's environment from the template and its Timeout, and LambdaInvoke's result and error shapes.
import type { Component } from './aws-calls.ts';
import { PAYLOAD_LIMIT_BYTES, StateError } from './distributed-map.ts';
import type { Json, JsonObject, LambdaInvocation, RunOptions } from './local-workflow-types.ts';
import { FAKE_REGION, type CfnTemplate } from './synthesized-workflow.ts';
import { ENV } from '../../schema/environment.ts';

interface LambdaInvoker {
  template: CfnTemplate;
  awsEnv: Record<string, string>;
  runOptions: RunOptions;
  /** Which code each function (logical id) runs. */
  handlerOf: Map<string, (event: never) => Promise<unknown>>;
  functionId: (functionName: string) => string;
  lambdaEnvironment: (functionName: string, bucket: string) => Record<string, string>;
  componentOfFunction: Map<string, Component>;
  /** Runs a call as `component` (its AWS calls are recorded as that role's). */
  asComponent: <A extends unknown[], R>(component: Component, fn: (...args: A) => Promise<R>) => (...args: A) => Promise<R>;
  /** This execution's invocations, appended to. */
  lambdas: LambdaInvocation[];
}

/** The `lambda:invoke` task handler of a state. */
export function lambdaInvoker({
  template,
  awsEnv,
  runOptions,
  handlerOf,
  functionId,
  lambdaEnvironment,
  componentOfFunction,
  asComponent,
  lambdas,
}: LambdaInvoker) {
  return (stateName: string) =>
    async (parameters: Json): Promise<Json> => {
      const params = parameters as { FunctionName: string; Payload?: Json };
      const handler = handlerOf.get(functionId(params.FunctionName));
      if (!handler) throw new Error(`${stateName}: no local handler for ${params.FunctionName}`);
      // The event crosses a JSON boundary both ways, as it does in Lambda.
      const event = JSON.parse(JSON.stringify(params.Payload ?? {})) as unknown;
      const invocation: LambdaInvocation = { state: stateName, functionName: params.FunctionName, event };
      lambdas.push(invocation);
      const env = {
        ...awsEnv,
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
