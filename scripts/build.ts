// Builds what the package ships and the worker image runs, so nothing compiles TypeScript at run time:
//
//   tsx scripts/build.ts [--outdir DIR] [ecr-backup|worker|drill|lambdas|worker-image|infra ...]
//
// - ecr-backup, worker, drill: one self-contained ESM file each (DIR/<name>.mjs; the Dockerfile
//   builds worker and drill, the package's bin is ecr-backup);
// - lambdas: each Lambda handler bundled into DIR/assets/lambda/<name>/index.mjs;
// - worker-image: the worker image's Docker build context with the bundles prebuilt
//   (DIR/assets/worker-image: the Dockerfile's runtime stage, worker.mjs, drill.mjs);
// - infra: the `ecr-backup/infra` export, infra/ and what it imports compiled with declarations into
//   DIR/lib (tsconfig.build.json).
// The construct compiled into the package synthesizes from the prebuilt assets (infra/assets.ts).
// With no names it builds all of them into dist/ (what `npm pack` ships). Tests build into their own
// --outdir, so a concurrent `npm run build` never rewrites a file a test is running.
import { build, type BuildOptions } from 'esbuild';
import { execa } from 'execa';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ESM_BUNDLE, LAMBDA_SOURCES, PREBUILT } from '../infra/assets.ts';

const ENTRIES = { 'ecr-backup': 'cli/main.ts', worker: 'worker/main.ts', drill: 'worker/drill-main.ts' } as const;
const TARGETS = [...(Object.keys(ENTRIES) as Array<keyof typeof ENTRIES>), 'lambdas', 'worker-image', 'infra'] as const;
type Target = (typeof TARGETS)[number];

const { values, positionals } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } }, allowPositionals: true });
const unknown = positionals.filter((name) => !(TARGETS as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`unknown target ${unknown.join(', ')}; choose from ${TARGETS.join(', ')}`);
  process.exit(2);
}
const names = new Set((positionals.length > 0 ? positionals : TARGETS) as Target[]);
const outdir = values.outdir;

const esm: BuildOptions = {
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  mainFields: [...ESM_BUNDLE.mainFields],
  // Some dependencies still call require(); give the ESM bundle one.
  banner: { js: ESM_BUNDLE.banner },
  logLevel: 'warning',
};

/** The Dockerfile's last (runtime) stage, copying the prebuilt bundles from the context instead of the build stage. */
async function prebuiltDockerfile(): Promise<string> {
  const dockerfile = await readFile('Dockerfile', 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM ') + 1);
  const copy = /^COPY --from=build ((?:\/src\/dist\/\S+\.mjs )+)\/app\/$/m;
  const files = copy.exec(runtime)?.[1]?.trim().split(' ');
  if (!files) throw new Error('Dockerfile: its last stage no longer copies the bundles from /src/dist/ (scripts/build.ts reads it)');
  const header =
    '# ecr-backup worker image, prebuilt context: written by `npm run build` (scripts/build.ts) from the\n' +
    "# repository's Dockerfile, whose last stage this is. The bundles are in this directory: no sources, no npm ci.\n";
  return header + runtime.replace(copy, `COPY ${files.map((f) => f.replace('/src/dist/', '')).join(' ')} /app/`);
}

// Directories this run writes whole are emptied first: nothing removed from the sources stays shipped.
const assets = join(outdir, PREBUILT.root);
const owned = {
  lambdas: join(assets, PREBUILT.lambdas),
  'worker-image': join(assets, PREBUILT.workerImage),
  infra: join(outdir, PREBUILT.lib),
};
await Promise.all(Object.entries(owned).map(([name, dir]) => names.has(name as Target) && rm(dir, { recursive: true, force: true })));

const jobs: Array<Promise<unknown>> = [];
const bundles = (Object.keys(ENTRIES) as Array<keyof typeof ENTRIES>).filter((name) => names.has(name));
if (bundles.length > 0)
  jobs.push(build({ ...esm, target: 'node20', entryPoints: Object.fromEntries(bundles.map((name) => [name, ENTRIES[name]])), outdir }));
if (names.has('lambdas')) {
  for (const [name, source] of Object.entries(LAMBDA_SOURCES))
    jobs.push(
      build({ ...esm, target: ESM_BUNDLE.lambdaTarget, entryPoints: [source], outfile: join(owned.lambdas, name, PREBUILT.lambdaFile) }),
    );
}
if (names.has('worker-image')) {
  const context = owned['worker-image'];
  jobs.push(build({ ...esm, target: 'node20', entryPoints: { worker: ENTRIES.worker, drill: ENTRIES.drill }, outdir: context }));
  jobs.push(mkdir(context, { recursive: true }).then(async () => writeFile(join(context, 'Dockerfile'), await prebuiltDockerfile())));
}
if (names.has('infra')) jobs.push(execa('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', owned.infra], { stdio: 'inherit' }));
await Promise.all(jobs);
