// Names of the environment variables the stack gives its Lambdas and the Fargate worker. Plain
// constants with no CDK import, so handler and worker code may import them too.

/** `s3://<bucket>/<prefix>` (prefix may be empty; when present it ends with `/`). Lambdas and worker. */
export const STORE_URL = 'STORE_URL';
/** Archive format for new backups: `oci` | `docker-archive` (schema ArchiveFormat). Lambdas and worker. */
export const IMAGE_FORMAT = 'IMAGE_FORMAT';

/** Worker: key (in the store bucket) of this task's WorkBatch file; set per Fargate task by the Map. */
export const BATCH_KEY = 'BATCH_KEY';
/** Worker: AWS region the task runs in (set explicitly from the stack; Fargate does not guarantee it). */
export const AWS_REGION = 'AWS_REGION';

/** Listing Lambda: JSON array of repository globs the stack protects; `{}` input backs up these. */
export const PROTECTED_REPOSITORIES = 'PROTECTED_REPOSITORIES';
/** Listing Lambda: a batch is closed when it reaches this many compressed image bytes ... */
export const BATCH_MAX_BYTES = 'BATCH_MAX_BYTES';
/** ... or this many images. */
export const BATCH_MAX_IMAGES = 'BATCH_MAX_IMAGES';

/** Summary Lambda: failure percentage (0-100) over which the run fails. */
export const FAILURE_TOLERANCE_PERCENT = 'FAILURE_TOLERANCE_PERCENT';
/** Summary Lambda: SNS topic to notify when anything failed. */
export const TOPIC_ARN = 'TOPIC_ARN';
/** Summary Lambda: CloudWatch metrics namespace (the PutMetricData permission is limited to it). */
export const METRICS_NAMESPACE = 'METRICS_NAMESPACE';

export const DEFAULT_METRICS_NAMESPACE = 'EcrBackup';

/** The worker image's command (Dockerfile CMD): the esbuild bundle of worker/main.ts. */
export const WORKER_CONTAINER_COMMAND: readonly string[] = ['node', '/app/worker.mjs'];
