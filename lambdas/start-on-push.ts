// Push Lambda (EcrBackup `pushBackups` prop): ECR "ECR Image Action" events (PUSH, SUCCESS) reach it
// through EventBridge -> SQS, one batch per invocation. It starts ONE backup execution per batch for
// exactly the pushed images (ExecutionInput.images), so the RPO is minutes instead of a day.
//
// Bounds (a burst of 10,000 pushes must not start 10,000 executions):
//   - the queue hands over up to `batchSize` messages per invocation after a batching window, and
//     the function has reserved concurrency 1: at most one batch is being turned into an execution;
//   - before starting, the function counts the state machine's RUNNING executions; at the limit it
//     fails the batch, which stays in the queue and is retried after the visibility timeout.
// Idempotency: the execution name is a hash of the batch's images (and digests), so a redelivered
// batch finds its execution already there (ExecutionAlreadyExists is success); duplicate events in a
// batch collapse to one image; an image the store already holds (scheduled run, earlier push run) is
// skipped by the listing as unchanged.
import { createHash } from 'node:crypto';
import { ExecutionAlreadyExists, ListExecutionsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { describeIssues, MAX_PUSHED_IMAGES, parseExecutionInput, type ExecutionInput, type PushedImage } from '../schema/contract.ts';
import { matchesFilters } from '../schema/glob.ts';
import { isRepositoryName, isTag } from '../schema/names.ts';
import { jsonStringArray, PUSH_ENV } from '../schema/environment.ts';
import { log } from '../core/log.ts';
import { perContainer, withLambdaContext } from './runtime.ts';

/** Environment variables the construct sets on this function. */

const PushEnvironment = z.object({
  [PUSH_ENV.STATE_MACHINE_ARN]: z.string().min(1),
  [PUSH_ENV.PROTECTED_REPOSITORIES]: jsonStringArray,
  [PUSH_ENV.MAX_RUNNING_EXECUTIONS]: z.coerce.number().int().positive().default(3),
});

/** The fields of an ECR "ECR Image Action" event this function reads. */
const EcrImageAction = z.object({
  'detail-type': z.literal('ECR Image Action'),
  detail: z.object({
    'action-type': z.string(),
    result: z.string(),
    'repository-name': z.string(),
    'image-tag': z.string().optional(),
    'image-digest': z.string().optional(),
  }),
});

export class TooManyRunningError extends Error {
  override name = 'TooManyRunningError';
}

/** What the handler needs from Step Functions (injected in tests, SFNClient in Lambda). */
export interface ExecutionStarter {
  /** Executions of the state machine now RUNNING (counting stops at `limit`). */
  running(limit: number): Promise<number>;
  /** Starts an execution; resolves false when one with this name already exists. */
  start(name: string, input: ExecutionInput): Promise<boolean>;
}

export interface PushBatchOutcome {
  /** Images named in the batch's events, after dedupe and the protected-repository filter. */
  images: PushedImage[];
  /** Messages that were not a successful tagged PUSH of a protected repository (logged, dropped). */
  ignored: number;
  /** Names of the executions started (or found already started) for this batch. */
  executions: string[];
}

/**
 * The distinct pushed images of a batch, protected ones only, sorted. Untagged pushes (a digest
 * only) are left to the scheduled run (`includeUntagged`), like deletions and failed pushes.
 */
export function pushedImages(
  event: SQSEvent,
  protectedRepositories: readonly string[],
): { images: (PushedImage & { digest?: string })[]; ignored: number } {
  const byName = new Map<string, PushedImage & { digest?: string }>();
  let ignored = 0;
  for (const record of event.Records) {
    let parsed: ReturnType<typeof EcrImageAction.safeParse> | undefined;
    try {
      parsed = EcrImageAction.safeParse(JSON.parse(record.body));
    } catch {
      parsed = undefined;
    }
    const detail = parsed?.success ? parsed.data.detail : undefined;
    const tag = detail?.['image-tag'];
    if (
      detail?.['action-type'] !== 'PUSH' ||
      detail.result !== 'SUCCESS' ||
      tag === undefined ||
      !isTag(tag) ||
      !isRepositoryName(detail['repository-name']) ||
      !matchesFilters(detail['repository-name'], protectedRepositories)
    ) {
      ignored += 1;
      log('info', 'ignored a queue message', {
        messageId: record.messageId,
        reason: parsed?.success === false ? describeIssues(parsed.error) : 'not a tagged, successful push of a protected repository',
      });
      continue;
    }
    const repository = detail['repository-name'];
    // The last event for a tag wins (a tag pushed twice in one batch: its newest digest).
    byName.set(`${repository}:${tag}`, { repository, tag, ...(detail['image-digest'] ? { digest: detail['image-digest'] } : {}) });
  }
  const images = [...byName.values()].sort((a, b) =>
    a.repository === b.repository ? (a.tag < b.tag ? -1 : 1) : a.repository < b.repository ? -1 : 1,
  );
  return { images, ignored };
}

/** A deterministic execution name (<= 80 characters) for a chunk of images: the same chunk, the same name. */
export function executionName(images: readonly (PushedImage & { digest?: string })[]): string {
  const hash = createHash('sha256');
  for (const i of images) hash.update(`${i.repository}:${i.tag}@${i.digest ?? ''}\n`);
  return `push-${hash.digest('hex').slice(0, 48)}`;
}

/** Turns one SQS batch into at most ceil(images / MAX_PUSHED_IMAGES) executions (one for any batch the construct configures). */
export async function startOnPush(
  event: SQSEvent,
  options: { protectedRepositories: readonly string[]; maxRunning: number; starter: ExecutionStarter },
): Promise<PushBatchOutcome> {
  const { images, ignored } = pushedImages(event, options.protectedRepositories);
  const executions: string[] = [];
  if (images.length === 0) return { images: [], ignored, executions };
  const running = await options.starter.running(options.maxRunning);
  if (running >= options.maxRunning) {
    // The whole batch goes back to the queue: SQS redelivers it after the visibility timeout.
    throw new TooManyRunningError(
      `${running} executions are running (limit ${options.maxRunning}); ${images.length} pushed image(s) wait in the queue`,
    );
  }
  for (let i = 0; i < images.length; i += MAX_PUSHED_IMAGES) {
    const chunk = images.slice(i, i + MAX_PUSHED_IMAGES);
    const name = executionName(chunk);
    const input = parseExecutionInput({ mode: 'backup', images: chunk.map(({ repository, tag }) => ({ repository, tag })) });
    const started = await options.starter.start(name, input);
    log('info', started ? 'started a push backup' : 'push backup already started', { execution: name, images: chunk.length });
    executions.push(name);
  }
  return { images: images.map(({ repository, tag }) => ({ repository, tag })), ignored, executions };
}

/** Step Functions as the starter. */
export function sfnStarter(stateMachineArn: string, client = new SFNClient({})): ExecutionStarter {
  return {
    async running(limit) {
      const page = await client.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: limit }));
      return page.executions?.length ?? 0;
    },
    async start(name, input) {
      try {
        await client.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
        return true;
      } catch (error) {
        if (error instanceof ExecutionAlreadyExists) return false;
        throw error;
      }
    },
  };
}

/** The Step Functions client for the container's life. */
const sfnClient = perContainer(() => new SFNClient({}));

export const handler = withLambdaContext(async (event: SQSEvent): Promise<PushBatchOutcome> => {
  const parsed = PushEnvironment.safeParse(process.env);
  if (!parsed.success) throw new Error(`the push Lambda is misconfigured: ${describeIssues(parsed.error)}`);
  const env = parsed.data;
  return startOnPush(event, {
    protectedRepositories: env[PUSH_ENV.PROTECTED_REPOSITORIES],
    maxRunning: env[PUSH_ENV.MAX_RUNNING_EXECUTIONS],
    starter: sfnStarter(env[PUSH_ENV.STATE_MACHINE_ARN], sfnClient('sfn')),
  });
});
