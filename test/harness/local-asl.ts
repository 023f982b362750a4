// The local rewrite of the deployed ASL for aws-local-stepfunctions: distributed Maps become an
// ItemReader task + INLINE Map + ResultWriter task, `"ResultPath": "$"` is normalized, and the
// harness's bookkeeping fields are stripped before validation.
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { LOCAL_CHILD_FAILED, LOCAL_CHILD_RESULT, LOCAL_WRITER } from './distributed-map.ts';
import type { Json, JsonObject, States } from './local-workflow-types.ts';

export const LOCAL_ITEMS_KEY = 'LocalDistributedMapItems';
const READER_SUFFIX = ' (ItemReader)';

export const LOCAL_READER_COMMENT = 'local: the distributed Map ItemReader';

/** Calls `fn` for every state, descending into Map item processors and Parallel branches. */
export function forEachState(definition: { States: States }, fn: (name: string, state: JsonObject) => void): void {
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
export function rewriteDistributedMaps<T extends { StartAt: string; States: States }>(definition: T, counter = { n: 0 }): T {
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
export function normalizeResultPaths(definition: { States: States }): void {
  forEachState(definition, (_name, state) => {
    if (state.ResultPath === '$') delete state.ResultPath;
    for (const c of (state.Catch ?? []) as JsonObject[]) if (c.ResultPath === '$') delete c.ResultPath;
  });
}

/** Drops the harness's bookkeeping fields (ItemsKey, ReaderConfig on the reader task) before validation. */
export function stripLocalFields(definition: StateMachineDefinition): StateMachineDefinition {
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
