// Where the deployable code comes from, and the names the worker containers carry. Two places:
// - this repository (infra/*.ts run by tsx: `cdk synth`, the tests): NodejsFunction bundles each
//   Lambda from lambdas/ at synth time, and the worker image builds from the repository root
//   (Dockerfile: npm ci, then the bundles);
// - the npm package (`ecr-backup/infra`, compiled to dist/lib/infra/*.js): `npm run build` (scripts/build.ts)
//   has already bundled each Lambda into dist/assets/lambda/<name>/ and staged the worker image's
//   build context in dist/assets/worker-image/, so synth runs no esbuild and needs no sources.
// `deployableCode()` is the one place that decides between them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The worker image's command (the Dockerfile's CMD): the esbuild bundle of worker/main.ts. */
export const WORKER_CONTAINER_COMMAND: readonly string[] = ['node', '/app/worker.mjs'];

/** Container names in the two task definitions (also how test/harness/synthesized-workflow.ts finds them in a template). */
export const WORKER_CONTAINER = { backup: 'backup-worker', restore: 'restore-worker' } as const;

/** The Lambda handlers (each exports `handler`): asset name -> source in this repository. */
export const LAMBDA_SOURCES = {
  'list-images': 'lambdas/list-images.ts',
  summarize: 'lambdas/summarize.ts',
  prune: 'lambdas/prune.ts',
  'start-on-push': 'lambdas/start-on-push.ts',
} as const;
export type LambdaName = keyof typeof LAMBDA_SOURCES;

/**
 * esbuild settings of the ESM bundles: a Lambda's are the same at synth time (NodejsFunction) and in
 * `npm run build`, which also gives the CLI and worker bundles the main fields and the banner.
 */
export const ESM_BUNDLE = {
  lambdaTarget: 'node22',
  mainFields: ['module', 'main'],
  // Some CommonJS dependencies call require() at run time; give the ESM bundle one.
  banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
} as const;

/** The prebuilt assets' layout under the package's dist/ (written by scripts/build.ts). */
export const PREBUILT = {
  /** The compiled construct (tsconfig.build.json): this module is dist/lib/infra/assets.js there. */
  lib: 'lib',
  root: 'assets',
  /** One directory per Lambda: `lambda/<name>/`. */
  lambdas: 'lambda',
  /** The prebuilt Lambda bundle's file name inside its directory (its handler is `index.handler`). */
  lambdaFile: 'index.mjs',
  workerImage: 'worker-image',
} as const;

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root: the Docker build context and the base of the Lambda entry points (from sources). */
export const REPO_ROOT = path.resolve(HERE, '..');
export const LIST_HANDLER_ENTRY = path.join(REPO_ROOT, LAMBDA_SOURCES['list-images']);
export const SUMMARIZE_HANDLER_ENTRY = path.join(REPO_ROOT, LAMBDA_SOURCES.summarize);

type LambdaCode = { prebuilt: string } | { entry: string; projectRoot: string; lockFile: string };

export interface DeployableCode {
  lambda(name: LambdaName): LambdaCode;
  /** The worker image's Docker build context (it has a `Dockerfile`). */
  workerImageContext: string;
}

/**
 * Compiled (dist/lib/infra/assets.js in the package) the construct uses the prebuilt assets of the
 * package (dist/assets/); run from TypeScript in this repository it bundles from the sources.
 */
export function deployableCode(): DeployableCode {
  if (import.meta.url.endsWith('.ts')) {
    return {
      lambda: (name) => ({
        entry: path.join(REPO_ROOT, LAMBDA_SOURCES[name]),
        projectRoot: REPO_ROOT,
        lockFile: path.join(REPO_ROOT, 'package-lock.json'),
      }),
      workerImageContext: REPO_ROOT,
    };
  }
  const root = path.resolve(HERE, '..', '..', PREBUILT.root);
  const existing = (dir: string) => {
    if (!fs.existsSync(dir)) throw new Error(`ecr-backup: the prebuilt asset ${dir} is missing: the package was not built (npm run build)`);
    return dir;
  };
  return {
    lambda: (name) => ({ prebuilt: existing(path.join(root, PREBUILT.lambdas, name)) }),
    workerImageContext: existing(path.join(root, PREBUILT.workerImage)),
  };
}
