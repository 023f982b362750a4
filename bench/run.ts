// `npm run bench [-- --quick] [--only shared-base,unrelated,1gb] [--dest s3,dir] [--repeat N]`
//
// Backs up three workloads from a real registry (Debian's docker-registry on loopback) into moto S3
// and into a directory, with our CLI (full run, then an incremental run into the same store) and with
// the baseline (the original script's skopeo docker-archive + aws s3 cp / cp pipeline, per tag,
// sequential), and reports wall time, stored bytes, peak RSS and peak temp disk against the targets.
// Targets are reported, never asserted. Prints markdown on stdout and writes it to bench/results/.
// This file runs the bench: services, fixtures, measurements (measure-workload.ts), report files.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { AWS_CLI } from './baseline.ts';
import { log } from './log.ts';
import { machineFacts, version } from './machine.ts';
import { runMeasured } from './measure.ts';
import { measureWorkload, newRow } from './measure-workload.ts';
import { benchNotes } from './notes.ts';
import { parseArgs } from './options.ts';
import { cliEnv, ROOT } from './ours.ts';
import { mib, renderReport, secs, type Row } from './report.ts';
import { BUCKET, s3Client } from './s3-destination.ts';

const options = parseArgs(process.argv.slice(2));

// Everything this run creates (fixtures, registry data, moto's spill files, stores, tars) lives under
// one root that is removed at the end. TMPDIR is pointed at it before any service is started.
const benchRoot = await mkdtemp(join(tmpdir(), 'ecr-backup-bench-'));
process.env.TMPDIR = benchRoot;
// Imported after TMPDIR is set: the harness puts its temp dirs in os.tmpdir().
const { startRegistry } = await import('../test/harness/registry.ts');
const { startMoto } = await import('../test/harness/moto.ts');
const { cleanupFixtures } = await import('../test/harness/fixture-scratch.ts');
const { selectWorkloads } = await import('./workloads.ts');
type TestRegistry = Awaited<ReturnType<typeof startRegistry>>;

const { sizes, workloads } = selectWorkloads(options);

// ---------------------------------------------------------------------------------------------
// Services and cleanup

let registry: TestRegistry | undefined;
let moto: Awaited<ReturnType<typeof startMoto>> | undefined;
let cleaningUp: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    await Promise.allSettled([registry?.stop(), moto?.stop()]);
    await cleanupFixtures().catch(() => undefined);
    await rm(benchRoot, { recursive: true, force: true });
  })();
  return cleaningUp;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping services and removing ${benchRoot}`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// The run

const rows: Row[] = [];
const setup: [string, string][] = [];
const startedAt = new Date();
const load = [loadavg()[0]!];
let exitCode = 0;

try {
  log(
    `root ${benchRoot}; ${options.quick ? 'quick' : 'full'} sizes; workloads ${workloads.map((w) => w.id).join(', ')}; destinations ${options.dest.join(', ')}`,
  );
  let t = performance.now();
  // We measure what users run: the bundled CLI (dist/ecr-backup.mjs), built from this checkout.
  await promisify(execFile)('npm', ['run', '--silent', 'build', '--', 'ecr-backup'], { cwd: ROOT });
  setup.push(['npm run build (bundle the CLI)', secs(performance.now() - t)]);
  t = performance.now();
  const needS3 = options.dest.includes('s3');
  [registry, moto] = await Promise.all([startRegistry(), needS3 ? startMoto() : Promise.resolve(undefined)]);
  setup.push([`start docker-registry${needS3 ? ' + moto' : ''}`, secs(performance.now() - t)]);
  const awsEnv: Record<string, string> = moto?.env ?? {};
  const s3 = needS3 ? s3Client(awsEnv) : undefined;
  const resetS3 = async () => {
    await moto!.reset();
    await s3!.send(new CreateBucketCommand({ Bucket: BUCKET }));
  };

  // A TMPDIR of our own for the measured CLI runs (its size is the "temp disk" figure).
  const childTmp = join(benchRoot, 'cli-tmp');
  await mkdir(childTmp, { recursive: true });
  const env = cliEnv(awsEnv, childTmp);
  const rssFile = join(benchRoot, 'rss.txt');
  // Start-up cost, for the record: the bundle we measure, and the TypeScript sources through tsx
  // (a separate TMPDIR: tsx keeps a compile cache there).
  const sourcesTmp = join(benchRoot, 'tsx-tmp');
  await mkdir(sourcesTmp, { recursive: true });
  const bundled = await runMeasured('node', [join(ROOT, 'dist/ecr-backup.mjs'), '--help'], { cwd: ROOT, env, rssFile, allowFailure: true });
  setup.push([
    'CLI start-up: `node dist/ecr-backup.mjs --help` (measured below): wall, CPU, peak RSS',
    `${secs(bundled.wallMs)}, ${secs(bundled.cpuMs)}, ${mib(bundled.maxRssBytes)}`,
  ]);
  const sourcesEnv = cliEnv(awsEnv, sourcesTmp);
  await runMeasured('node', ['--import', 'tsx', join(ROOT, 'cli/main.ts'), '--help'], {
    cwd: ROOT,
    env: sourcesEnv,
    rssFile,
    allowFailure: true,
  });
  const sources = await runMeasured('node', ['--import', 'tsx', join(ROOT, 'cli/main.ts'), '--help'], {
    cwd: ROOT,
    env: sourcesEnv,
    rssFile,
    allowFailure: true,
  });
  setup.push([
    'CLI start-up from sources: `node --import tsx cli/main.ts --help` (warm tsx cache): wall, CPU, peak RSS',
    `${secs(sources.wallMs)}, ${secs(sources.cpuMs)}, ${mib(sources.maxRssBytes)}`,
  ]);
  const baselineEnv: NodeJS.ProcessEnv = { ...process.env, ...awsEnv };
  const context = { registry, moto, s3, resetS3, benchRoot, env, childTmp, rssFile, baselineEnv, repeat: options.repeat };

  for (const workload of workloads) {
    t = performance.now();
    log(`${workload.id}: building and pushing fixtures`);
    const pushed = await workload.push(registry);
    setup.push([`build + push fixtures: ${workload.title}`, secs(performance.now() - t)]);
    log(`${workload.id}: ${pushed.images.length} image(s), ${mib(pushed.uniqueBytes)} unique compressed (${secs(performance.now() - t)})`);

    for (const destination of options.dest) {
      const row = newRow(workload, pushed, destination);
      rows.push(row);
      await measureWorkload(context, workload, pushed, destination, row);
    }
  }
  load.push(loadavg()[0]!);

  const awsWorks = (await version(AWS_CLI, ['--version'])) !== 'unavailable';
  const machine = await machineFacts({ startedAt, quick: options.quick, needS3, load });
  const notes = benchNotes(awsWorks, options.repeat);
  const report = renderReport({ title: `ecr-backup benchmark (${options.quick ? 'quick' : 'full'})`, machine, rows, notes, setup });
  process.stdout.write(report);
  const out = options.out ?? join(ROOT, 'bench/results', options.quick ? 'latest-quick.md' : 'latest.md');
  await mkdir(join(out, '..'), { recursive: true });
  await writeFile(out, report);
  await writeFile(out.replace(/\.md$/, '.json'), `${JSON.stringify({ options, sizes, machine, setup, rows }, null, 2)}\n`);
  log(`wrote ${out}`);
  if (rows.some((r) => r.errors.length)) exitCode = 1;
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
