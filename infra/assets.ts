// Where the deployable code comes from: the repository root (the worker image's Docker build context)
// and the Lambda entry points bundled by NodejsFunction, plus the names the worker containers carry.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The worker image's command (the Dockerfile's CMD): the esbuild bundle of worker/main.ts. */
export const WORKER_CONTAINER_COMMAND: readonly string[] = ['node', '/app/worker.mjs'];

/** Repository root: the Docker build context and the base of the Lambda entry points. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The lockfile NodejsFunction bundles against. */
export const LOCK_FILE = path.join(REPO_ROOT, 'package-lock.json');
export const LIST_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambdas/list-images.ts');
export const SUMMARIZE_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambdas/summarize.ts');
export const PRUNE_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambdas/prune.ts');

/** Container names in the two task definitions (also how test/harness/synthesized-workflow.ts finds them in a template). */
export const WORKER_CONTAINER = { backup: 'backup-worker', restore: 'restore-worker' } as const;
