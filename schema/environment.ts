// Environment variables the stack gives its Lambdas and the Fargate worker, and their validation.
// Each component parses its environment once at start-up (`load*Environment`), so a misconfigured
// deployment fails with one message naming every bad variable instead of halfway through a run.
import { z } from 'zod';
import { ArchiveCompression, ArchiveFormat, ArchiveLabel, describeIssues } from './contract.ts';

export const ENV = {
  /** `s3://<bucket>/<prefix>`: the backup store. Lambdas and worker. */
  STORE_URL: 'STORE_URL',
  /** Archive format for new backups (ArchiveFormat). Lambdas and worker. */
  IMAGE_FORMAT: 'IMAGE_FORMAT',
  /** Listing Lambda: docker-archive label and compression for scheduled backups (the stack's props). */
  ARCHIVE_LABEL: 'ARCHIVE_LABEL',
  ARCHIVE_COMPRESSION: 'ARCHIVE_COMPRESSION',
  /** Listing Lambda: JSON array of the archive labels the roles may write (the stack label first); an input label outside it is refused. */
  ARCHIVE_LABELS: 'ARCHIVE_LABELS',
  /** Worker: store-relative key of this task's WorkBatch; set per Fargate task by the Map. */
  BATCH_KEY: 'BATCH_KEY',
  /** Worker and Lambdas: the region they run in. */
  AWS_REGION: 'AWS_REGION',
  /** Listing Lambda: JSON array of repository globs the stack protects; `{}` input backs up these. */
  PROTECTED_REPOSITORIES: 'PROTECTED_REPOSITORIES',
  /** Listing Lambda: JSON array of repository globs a restore may write (after the prefix); default PROTECTED_REPOSITORIES. */
  RESTORE_REPOSITORIES: 'RESTORE_REPOSITORIES',
  /** Listing Lambda: a batch is closed when it reaches this many compressed image bytes ... */
  BATCH_MAX_BYTES: 'BATCH_MAX_BYTES',
  /** ... or this many images. */
  BATCH_MAX_IMAGES: 'BATCH_MAX_IMAGES',
  /** Listing Lambda: repositories per listing shard (one `List shard` invocation each). */
  LISTING_SHARD_SIZE: 'LISTING_SHARD_SIZE',
  /** Listing Lambda: seconds after which recorded repository settings are read again in full (policies, tags). */
  SETTINGS_CADENCE_SECONDS: 'SETTINGS_CADENCE_SECONDS',
  /** Listing Lambda: ECR control-plane requests per second for one invocation (the account's budget / shards at once). */
  ECR_REQUESTS_PER_SECOND: 'ECR_REQUESTS_PER_SECOND',
  /** Summary Lambda: failure percentage (0-100) over which the run fails. */
  FAILURE_TOLERANCE_PERCENT: 'FAILURE_TOLERANCE_PERCENT',
  /** Summary Lambda: SNS topic to notify when anything failed. */
  TOPIC_ARN: 'TOPIC_ARN',
  /** Summary Lambda: CloudWatch metrics namespace of the run metrics it logs as EMF. */
  METRICS_NAMESPACE: 'METRICS_NAMESPACE',
  /**
   * Optional everywhere ECR is used: the registry address to use instead of the one the ECR
   * authorization token names (a VPC endpoint name in production; a local registry in tests).
   */
  ECR_REGISTRY_URL: 'ECR_BACKUP_ECR_REGISTRY_URL',
  /**
   * Optional everywhere: the longest silence (ms) while reading a response from a registry or S3
   * before the read is abandoned and retried or resumed (default 60000; tests shorten it).
   */
  IDLE_TIMEOUT_MS: 'ECR_BACKUP_IDLE_TIMEOUT_MS',
} as const;

export const DEFAULT_METRICS_NAMESPACE = 'EcrBackup';

/** Push Lambda (lambdas/start-on-push.ts). */
export const PUSH_ENV = {
  STATE_MACHINE_ARN: 'STATE_MACHINE_ARN',
  /** JSON array of the protected repository globs (the rule's pattern is a superset). */
  PROTECTED_REPOSITORIES: 'PROTECTED_REPOSITORIES',
  /** Executions of the state machine (scheduled ones included) allowed to run at once. */
  MAX_RUNNING_EXECUTIONS: 'MAX_RUNNING_EXECUTIONS',
} as const;

/** Prune Lambda (lambdas/prune.ts) and the prune task: the retention rule. */
export const PRUNE_ENV = {
  KEEP_LAST: 'PRUNE_KEEP_LAST',
  KEEP_DAYS: 'PRUNE_KEEP_DAYS',
  /** Unreferenced blobs younger than this are kept: set to the longest a backup task may run. */
  GRACE_SECONDS: 'PRUNE_GRACE_SECONDS',
} as const;

/**
 * Worker, Lambdas and CLI: the lowest level logged (`debug`, `info`, `warn`, `error`; default `info`).
 * Powertools Logger in the Lambdas reads the same variable.
 */
export const LOG_LEVEL_ENV = 'LOG_LEVEL';

/** Summary Lambda: `1` tracks each repository's last complete backup and publishes its age (dashboard prop). */
export const TRACK_BACKUP_AGE_ENV = 'TRACK_BACKUP_AGE';
/** The backup-age metrics the summary Lambda publishes and the dashboard charts. */
export const BACKUP_AGE_METRICS = { perRepository: 'LastBackupAgeSeconds', oldest: 'OldestBackupAgeSeconds' } as const;

const storeUrl = z.string().regex(/^s3:\/\/[^/]+(\/.*)?$|^(file:\/\/)?\//, 'must be s3://bucket/prefix or an absolute directory');
const optionalUrl = z
  .string()
  .url()
  .optional()
  .or(z.literal('').transform(() => undefined));
export const jsonStringArray = z.string().transform((value, ctx) => {
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed) && parsed.every((v) => typeof v === 'string')) return parsed as string[];
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'must be a JSON array of strings' });
  return z.NEVER;
});

const common = {
  [ENV.STORE_URL]: storeUrl,
  [ENV.AWS_REGION]: z.string().min(1).optional(),
  [ENV.ECR_REGISTRY_URL]: optionalUrl,
};

const ListingEnvironment = z.object({
  ...common,
  [ENV.PROTECTED_REPOSITORIES]: jsonStringArray.default(['**']),
  [ENV.RESTORE_REPOSITORIES]: jsonStringArray.optional(),
  [ENV.BATCH_MAX_BYTES]: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 ** 3),
  [ENV.BATCH_MAX_IMAGES]: z.coerce.number().int().positive().default(200),
  [ENV.LISTING_SHARD_SIZE]: z.coerce.number().int().positive().default(100),
  [ENV.SETTINGS_CADENCE_SECONDS]: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(7 * 24 * 3600),
  [ENV.ECR_REQUESTS_PER_SECOND]: z.coerce.number().positive().default(50),
  [ENV.IMAGE_FORMAT]: ArchiveFormat.default('oci'),
  [ENV.ARCHIVE_LABEL]: ArchiveLabel.optional(),
  [ENV.ARCHIVE_LABELS]: jsonStringArray.optional(),
  [ENV.ARCHIVE_COMPRESSION]: ArchiveCompression.optional(),
});

const WorkerEnvironment = z.object({
  ...common,
  [ENV.BATCH_KEY]: z.string().regex(/^runs\/[^/]+\/batches\/\d+\.json$/, 'must be runs/<run>/batches/<n>.json'),
  [ENV.IMAGE_FORMAT]: ArchiveFormat.default('oci'),
});

const SummaryEnvironment = z.object({
  ...common,
  [ENV.FAILURE_TOLERANCE_PERCENT]: z.coerce.number().min(0).max(100).default(0),
  [ENV.TOPIC_ARN]: z.string().optional(),
  [ENV.METRICS_NAMESPACE]: z.string().default(DEFAULT_METRICS_NAMESPACE),
});

export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
}

function load<T extends z.ZodType>(schema: T, component: string, env: NodeJS.ProcessEnv): z.infer<T> {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigurationError(`${component} is misconfigured: ${describeIssues(result.error)}`);
  return result.data;
}

export const loadListingEnvironment = (env: NodeJS.ProcessEnv = process.env) => load(ListingEnvironment, 'the listing Lambda', env);
export const loadWorkerEnvironment = (env: NodeJS.ProcessEnv = process.env) => load(WorkerEnvironment, 'the worker', env);
export const loadSummaryEnvironment = (env: NodeJS.ProcessEnv = process.env) => load(SummaryEnvironment, 'the summary Lambda', env);
