// Distributed Map semantics for the local runner (aws-local-stepfunctions has only INLINE maps).
// test/harness/local-workflow.ts rewrites each DISTRIBUTED Map `M` into
//
//   M (ItemReader)  Task: reads the items from S3 (moto) into the context object
//   M               INLINE Map over them; each iteration runs the original ItemProcessor inside
//                   `M (local child)` (a Parallel) whose outcome `M (local child result)` or, on any
//                   error, `M (local child failed)` records, so one failed child does not end the map
//   M (ResultWriter) Task with the Map's ResultPath/OutputPath/Catch/Next: applies
//                   ToleratedFailurePercentage/Count (States.ExceedToleratedFailureThreshold, which
//                   the Map's Catch can catch), writes the ResultWriter objects to S3 (manifest.json,
//                   SUCCEEDED_0.json, FAILED_0.json, as Step Functions does) and returns
//                   `{MapRunArn, ResultWriterDetails}`; without a ResultWriter it returns the children's
//                   outputs inline, and more than 256 KiB of them fails the execution with
//                   States.DataLimitExceeded, which no Catch can catch (as in AWS).
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Step Functions' limit on a state's input or output. */
export const PAYLOAD_LIMIT_BYTES = 256 * 1024;

export const LOCAL_CHILD_RESULT = 'local: a distributed Map child succeeded';
export const LOCAL_CHILD_FAILED = 'local: a distributed Map child failed';
export const LOCAL_WRITER = 'local: the distributed Map ResultWriter and failure tolerance';
/** Suffixes of the states the rewrite adds inside the item processor (left out of `statesEntered`). */
export const LOCAL_CHILD_SUFFIXES = [' (local child)', ' (local child result)', ' (local child failed)'];

/** A failure with the Error and Cause Step Functions would record (aws-local-stepfunctions uses name/message). */
export class StateError extends Error {
  constructor(error: string, cause: string) {
    super(cause);
    this.name = error;
  }
}

type ChildOutcome = { output: Json } | { error: string; cause: string };

/** Per execution: the children's outcomes by map key, and the one uncatchable failure, if any. */
export class MapRunState {
  readonly outcomes: Record<string, ChildOutcome[]> = {};
  fatal?: { error: string; cause: string };
  abort: () => void = () => {};

  reset(key: string): void {
    this.outcomes[key] = [];
  }

  childResult(key: string) {
    return async (input: Json): Promise<Json> => {
      const outcomes = this.outcomes[key] ?? [];
      outcomes.push({ output: input });
      this.outcomes[key] = outcomes;
      return {};
    };
  }

  childFailed(key: string) {
    return async (input: Json): Promise<Json> => {
      const e = (input ?? {}) as { Error?: string; Cause?: string };
      const outcomes = this.outcomes[key] ?? [];
      outcomes.push({ error: String(e.Error), cause: String(e.Cause ?? '') });
      this.outcomes[key] = outcomes;
      return {};
    };
  }

  /** The `M (ResultWriter)` task; `state` is the rewritten writer state (its bookkeeping fields). */
  writer(stateName: string, state: JsonObject, s3: S3Client, mapRunPrefix: string) {
    return async (parameters: Json): Promise<Json> => {
      const key = String(state.MapKey);
      const outcomes = this.outcomes[key] ?? [];
      const failed = outcomes.filter((o): o is { error: string; cause: string } => 'error' in o);
      const mapRunArn = `${mapRunPrefix}/${String(state.Label ?? stateName)}:${randomUUID()}`;
      let output: Json;
      if (state.HasResultWriter) {
        const { Bucket, Prefix } = parameters as { Bucket: string; Prefix?: string };
        const base = `${Prefix ? `${Prefix.replace(/\/+$/, '')}/` : ''}${mapRunArn.split(':').at(-1)}`;
        const put = (name: string, body: Json) =>
          s3.send(new PutObjectCommand({ Bucket, Key: `${base}/${name}`, Body: JSON.stringify(body) }));
        const succeeded = outcomes.filter((o): o is { output: Json } => 'output' in o).map((o) => o.output);
        const files: JsonObject[] = [];
        if (succeeded.length) {
          await put('SUCCEEDED_0.json', succeeded);
          files.push({ Key: `${base}/SUCCEEDED_0.json`, Size: JSON.stringify(succeeded).length });
        }
        if (failed.length) {
          const body = failed.map((f) => ({ Error: f.error, Cause: f.cause }));
          await put('FAILED_0.json', body);
          files.push({ Key: `${base}/FAILED_0.json`, Size: JSON.stringify(body).length });
        }
        await put('manifest.json', {
          DestinationBucket: Bucket,
          MapRunArn: mapRunArn,
          ResultFiles: {
            SUCCEEDED: files.filter((f) => String(f.Key).endsWith('SUCCEEDED_0.json')),
            FAILED: files.filter((f) => String(f.Key).endsWith('FAILED_0.json')),
          },
        });
        output = { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket, Key: `${base}/manifest.json` } };
      } else {
        output = outcomes.map((o) => ('output' in o ? o.output : { Error: o.error, Cause: o.cause }));
      }
      const pct = typeof state.ToleratedFailurePercentage === 'number' ? state.ToleratedFailurePercentage : undefined;
      const count = typeof state.ToleratedFailureCount === 'number' ? state.ToleratedFailureCount : undefined;
      const exceeded =
        failed.length > 0 &&
        ((pct === undefined && count === undefined) ||
          (pct !== undefined && (failed.length * 100) / outcomes.length > pct) ||
          (count !== undefined && failed.length > count));
      if (exceeded) {
        throw new StateError(
          'States.ExceedToleratedFailureThreshold',
          `${stateName}: ${failed.length} of ${outcomes.length} child execution(s) failed; first: ${failed[0]!.error}`,
        );
      }
      const size = Buffer.byteLength(JSON.stringify(output));
      if (size > PAYLOAD_LIMIT_BYTES) {
        // Not catchable: the execution fails here, whatever the Map's Catch says.
        this.fatal = {
          error: 'States.DataLimitExceeded',
          cause: `The state/task '${stateName}' returned a result with a size exceeding the maximum number of bytes service limit (${size} > ${PAYLOAD_LIMIT_BYTES}).`,
        };
        this.abort();
        throw new StateError(this.fatal.error, this.fatal.cause);
      }
      return output;
    };
  }
}

/** A state output over the limit in the event log (a state the interpreter let through). */
export function oversizedOutput(
  events: Array<{ type: string; state?: { name: string; output?: unknown } }>,
): { error: string; cause: string } | undefined {
  for (const e of events) {
    if (e.type !== 'StateExited' || e.state?.output === undefined) continue;
    const size = Buffer.byteLength(JSON.stringify(e.state.output));
    if (size > PAYLOAD_LIMIT_BYTES)
      return { error: 'States.DataLimitExceeded', cause: `the output of ${e.state.name} is ${size} bytes (limit ${PAYLOAD_LIMIT_BYTES})` };
  }
  return undefined;
}
