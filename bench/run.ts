// `npm run bench [-- --quick] [--only shared-base,unrelated,1gb] [--dest s3,dir] [--repeat N]`
//
// Backs up three workloads from a real registry (Debian's docker-registry on loopback) into moto S3
// and into a directory, with our CLI (full run, then an incremental run into the same store) and with
// the baseline (the original script's skopeo docker-archive + aws s3 cp / cp pipeline, per tag,
// sequential), and reports wall time, stored bytes, peak RSS and peak temp disk against the targets.
// Targets are reported, never asserted. Prints markdown on stdout and writes it to bench/results/.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { runBaseline, AWS_CLI, type BaselineResult } from './baseline.ts';
import { runMeasured, treeBytes } from './measure.ts';
import { cliEnv, ROOT, runOurs } from './ours.ts';
import { mib, renderReport, secs, type DestinationKind, type Row, type ServiceCpu } from './report.ts';

const MiB = 1024 * 1024;
const exec = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv: string[]) {
  const options = {
    quick: false,
    repeat: 0,
    only: undefined as string[] | undefined,
    dest: ['s3', 'dir'] as DestinationKind[],
    out: undefined as string | undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === '--quick') options.quick = true;
    else if (flag === '--only') options.only = value().split(',');
    else if (flag === '--repeat') options.repeat = Number(value());
    else if (flag === '--dest') options.dest = value().split(',') as DestinationKind[];
    else if (flag === '--out') options.out = value();
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  if (options.repeat === 0) options.repeat = options.quick ? 1 : 3;
  if (!Number.isInteger(options.repeat) || options.repeat < 1 || options.repeat > 20) usage('--repeat takes an integer from 1 to 20');
  for (const d of options.dest) if (d !== 's3' && d !== 'dir') usage(`--dest takes s3 and/or dir, got ${d}`);
  return options;
}

function usage(error?: string): never {
  if (error) process.stderr.write(`bench: ${error}\n`);
  process.stderr.write(
    'usage: npm run bench -- [--quick] [--only shared-base,unrelated,1gb] [--dest s3,dir] [--repeat N] [--out FILE.md]\n',
  );
  process.exit(error ? 2 : 0);
}

const options = parseArgs(process.argv.slice(2));
const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

// Everything this run creates (fixtures, registry data, moto's spill files, stores, tars) lives under
// one root that is removed at the end. TMPDIR is pointed at it before any service is started.
const benchRoot = await mkdtemp(join(tmpdir(), 'ecr-backup-bench-'));
process.env.TMPDIR = benchRoot;
// Imported after TMPDIR is set: the harness puts its temp dirs in os.tmpdir().
const { startRegistry } = await import('../test/harness/registry.ts');
const { startMoto } = await import('../test/harness/moto.ts');
const { pushSharedBaseTags, pushRandomImages, pushImage, cleanupFixtures } = await import('../test/harness/fixtures.ts');
type TestRegistry = Awaited<ReturnType<typeof startRegistry>>;

// ---------------------------------------------------------------------------------------------
// Workloads

interface Pushed {
  images: { repository: string; tag: string }[];
  uniqueBytes: number;
}

interface Workload {
  id: string;
  title: string;
  repositories: string[];
  speedTarget?: number;
  rssTarget?: boolean;
  push(registry: TestRegistry): Promise<Pushed>;
}

const q = options.quick;
const sizes = {
  tags: 8,
  base: (q ? 20 : 100) * MiB,
  unique: (q ? 2 : 10) * MiB,
  unrelatedCount: 4,
  unrelated: (q ? 10 : 50) * MiB,
  bigLayers: 4,
  bigLayer: (q ? 32 : 256) * MiB,
};

const allWorkloads: Workload[] = [
  {
    id: 'shared-base',
    title: `shared-base (${sizes.tags} tags, ${mib(sizes.base)} base + ${mib(sizes.unique)} each)`,
    repositories: ['bench/shared-base'],
    speedTarget: 4,
    async push(registry) {
      const pushed = await pushSharedBaseTags(registry, {
        repository: 'bench/shared-base',
        tags: sizes.tags,
        baseSize: sizes.base,
        uniqueSize: sizes.unique,
      });
      return { images: pushed.images.map((i) => ({ repository: i.repository, tag: i.tag })), uniqueBytes: pushed.blobBytes };
    },
  },
  {
    id: 'unrelated',
    title: `unrelated (${sizes.unrelatedCount} x ${mib(sizes.unrelated)})`,
    repositories: ['bench/unrelated-*'],
    speedTarget: 1.5,
    async push(registry) {
      const pushed = await pushRandomImages(registry, {
        count: sizes.unrelatedCount,
        size: sizes.unrelated,
        repository: (i) => `bench/unrelated-${i}`,
      });
      return {
        images: pushed.map((i) => ({ repository: i.repository, tag: i.tag })),
        uniqueBytes: pushed.reduce((s, i) => s + i.blobBytes, 0),
      };
    },
  },
  {
    id: '1gb',
    title: `1 GB image (${sizes.bigLayers} x ${mib(sizes.bigLayer)} layers)`,
    repositories: ['bench/big'],
    rssTarget: true,
    async push(registry) {
      const pushed = await pushImage(registry, {
        repository: 'bench/big',
        tag: 'latest',
        layerSizes: Array.from({ length: sizes.bigLayers }, () => sizes.bigLayer),
      });
      return { images: [{ repository: pushed.repository, tag: pushed.tag }], uniqueBytes: pushed.blobBytes };
    },
  },
];
const workloads = allWorkloads.filter((w) => !options.only || options.only.includes(w.id));
if (options.only) for (const id of options.only) if (!workloads.some((w) => w.id === id)) usage(`unknown workload ${id}`);

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

const BUCKET = 'ecr-backup-bench';

function s3Client(env: Record<string, string>): S3Client {
  return new S3Client({
    endpoint: env.AWS_ENDPOINT_URL,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
}

async function s3Bytes(client: S3Client, prefix: string): Promise<number> {
  let total = 0;
  let token: string | undefined;
  do {
    const out = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const o of out.Contents ?? []) total += o.Size ?? 0;
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return total;
}

async function version(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(command, args, { timeout: 20_000 });
    return (stdout || stderr).trim().split('\n')[0]!;
  } catch {
    return 'unavailable';
  }
}

/** The run with the median wall time (its breakdown stays consistent); the upper median for an even count. */
function representative<T extends { wallMs: number }>(runs: readonly T[]): T {
  return [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(runs.length / 2)]!;
}

function maxOf<T>(runs: readonly T[], key: { [K in keyof T]: T[K] extends number ? K : never }[keyof T]): number {
  return Math.max(...runs.map((r) => r[key] as number));
}

/** Our repetitions: the median run, with the worst RSS, temp disk and unexpected writes of them all. */
function mergeOurs<T extends { wallMs: number; maxRssBytes: number; peakTempBytes: number; unexpectedWrites: string[] }>(
  runs: readonly T[],
): T {
  return {
    ...representative(runs),
    maxRssBytes: Math.max(...runs.map((r) => r.maxRssBytes)),
    peakTempBytes: Math.max(...runs.map((r) => r.peakTempBytes)),
    unexpectedWrites: [...new Set(runs.flatMap((r) => r.unexpectedWrites))],
  };
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process in ms (0 when it cannot be read). */
async function processCpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND || 0;
}

async function serviceCpu(): Promise<ServiceCpu> {
  return { registryMs: await processCpuMs(registry?.pid), motoMs: await processCpuMs(moto?.pid) };
}

async function serviceCpuSince(before: ServiceCpu): Promise<ServiceCpu> {
  const now = await serviceCpu();
  return { registryMs: now.registryMs - before.registryMs, motoMs: now.motoMs - before.motoMs };
}

// ---------------------------------------------------------------------------------------------
// The run

const rows: Row[] = [];
const setup: [string, string][] = [];
const notes: string[] = [];
const startedAt = new Date();
const load = [loadavg()[0]!];
let exitCode = 0;

try {
  log(
    `root ${benchRoot}; ${options.quick ? 'quick' : 'full'} sizes; workloads ${workloads.map((w) => w.id).join(', ')}; destinations ${options.dest.join(', ')}`,
  );
  let t = performance.now();
  // We measure what users run: the bundled CLI (dist/ecr-backup.mjs), built from this checkout.
  await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
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

  for (const workload of workloads) {
    t = performance.now();
    log(`${workload.id}: building and pushing fixtures`);
    const pushed = await workload.push(registry);
    setup.push([`build + push fixtures: ${workload.title}`, secs(performance.now() - t)]);
    log(`${workload.id}: ${pushed.images.length} image(s), ${mib(pushed.uniqueBytes)} unique compressed (${secs(performance.now() - t)})`);

    for (const destination of options.dest) {
      const row: Row = {
        workload: workload.id,
        title: workload.title,
        destination,
        images: pushed.images.length,
        uniqueBytes: pushed.uniqueBytes,
        ...(workload.speedTarget !== undefined ? { speedTarget: workload.speedTarget } : {}),
        ...(workload.rssTarget ? { rssTarget: true } : {}),
        errors: [],
      };
      rows.push(row);
      const dirRoot = join(benchRoot, 'stores', `${workload.id}-${destination}`);
      const baselines: (BaselineResult & { storedBytes: number; services: ServiceCpu })[] = [];
      const fulls: NonNullable<Row['full']>[] = [];
      const incrementals: NonNullable<Row['incremental']>[] = [];

      for (let rep = 1; rep <= options.repeat; rep++) {
        const tag = `${workload.id} -> ${destination} [${rep}/${options.repeat}]`;
        // Baseline: a full run (it has no incremental mode).
        try {
          if (destination === 's3') await resetS3();
          log(`${tag}: baseline (skopeo docker-archive + ${destination === 's3' ? 'aws s3 cp' : 'cp'})`);
          const label = `baseline-${workload.id}`;
          const cpu0 = await serviceCpu();
          const result = await runBaseline({
            registryHost: registry.host,
            images: pushed.images,
            destination: destination === 's3' ? { kind: 's3', bucket: BUCKET, endpoint: moto!.url } : { kind: 'dir', root: dirRoot },
            label,
            workDir: join(benchRoot, 'baseline-work'),
            env: baselineEnv,
          });
          const storedBytes = destination === 's3' ? await s3Bytes(s3!, label) : await treeBytes(join(dirRoot, label));
          const services = await serviceCpuSince(cpu0);
          baselines.push({ ...result, storedBytes, services });
          log(`  baseline ${secs(result.wallMs)}, stored ${mib(storedBytes)}, peak temp ${mib(result.peakTempBytes)}`);
        } catch (error) {
          row.errors.push(`baseline: ${error instanceof Error ? error.message : String(error)}`);
          log(`  baseline FAILED: ${row.errors.at(-1)}`);
        } finally {
          await rm(dirRoot, { recursive: true, force: true });
        }

        // Ours: a full run into an empty store, then an incremental run into the same store.
        try {
          if (destination === 's3') await resetS3();
          const label = `ours-${workload.id}`;
          const storeDir = join(dirRoot, label);
          const store = destination === 's3' ? `s3://${BUCKET}/${label}` : storeDir;
          const stored = () => (destination === 's3' ? s3Bytes(s3!, label) : treeBytes(storeDir));
          const args = ['backup', '--registry', registry.url, '--to', store, '--repositories', ...workload.repositories];
          const run = async (kind: string) => {
            log(`${tag}: ours ${kind}`);
            const cpu0 = await serviceCpu();
            const result = await runOurs({ args, env, childTmp, rssFile, ...(destination === 'dir' ? { storeDir } : {}) });
            return { ...result, services: await serviceCpuSince(cpu0) };
          };
          const { report, ...full } = await run('full');
          if (report.counts.copied !== pushed.images.length)
            row.errors.push(`full run copied ${report.counts.copied} of ${pushed.images.length} images`);
          fulls.push({ ...full, storedBytes: await stored(), bytesCopied: report.counts.bytesCopied });
          log(
            `  ours full ${secs(full.wallMs)} (start ${secs(full.startLagMs)}, engine ${secs(full.engineMs)}, exit ${secs(full.exitLagMs)}), copied ${mib(report.counts.bytesCopied)}, RSS ${mib(full.maxRssBytes)}`,
          );
          const { report: incrementalReport, ...incremental } = await run('incremental');
          if (incrementalReport.counts.unchanged !== pushed.images.length) {
            row.errors.push(
              `incremental run: ${incrementalReport.counts.unchanged} of ${pushed.images.length} images unchanged, ${incrementalReport.counts.bytesCopied} bytes copied`,
            );
          }
          incrementals.push({ ...incremental, storedBytes: await stored(), unchanged: incrementalReport.counts.unchanged });
          log(
            `  ours incremental ${secs(incremental.wallMs)} (start ${secs(incremental.startLagMs)}, engine ${secs(incremental.engineMs)}, exit ${secs(incremental.exitLagMs)}), RSS ${mib(incremental.maxRssBytes)}`,
          );
        } catch (error) {
          row.errors.push(`ours: ${error instanceof Error ? error.message : String(error)}`);
          log(`  ours FAILED: ${row.errors.at(-1)}`);
        } finally {
          await rm(dirRoot, { recursive: true, force: true });
          if (destination === 's3') await moto!.reset().catch(() => undefined);
        }
      }
      row.samples = {
        baseline: baselines.map((b) => b.wallMs),
        full: fulls.map((f) => f.wallMs),
        incremental: incrementals.map((i) => i.wallMs),
      };
      if (baselines.length)
        row.baseline = {
          ...representative(baselines),
          maxRssBytes: maxOf(baselines, 'maxRssBytes'),
          peakTempBytes: maxOf(baselines, 'peakTempBytes'),
        };
      if (fulls.length) row.full = mergeOurs(fulls);
      if (incrementals.length) row.incremental = mergeOurs(incrementals);
    }
  }
  load.push(loadavg()[0]!);

  const awsWorks = (await version(AWS_CLI, ['--version'])) !== 'unavailable';
  const machine: [string, string][] = [
    ['Date', startedAt.toISOString()],
    ['Mode', options.quick ? 'quick (`--quick`: reduced sizes)' : 'full'],
    ['CPU', `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'} (nproc ${(await version('nproc', [])) || '?'})`],
    ['Memory', `${mib(totalmem())} total, ${mib(freemem())} free at the end`],
    ['OS', `Linux ${release()}`],
    ['Node', process.version],
    ['Registry', await version('docker-registry', ['--version'])],
    ['skopeo', await version('skopeo', ['--version'])],
    ['aws CLI', await version(AWS_CLI, ['--version'])],
    [
      'moto',
      needS3
        ? await version(process.env.MOTO_PYTHON ?? '/root/.pyenv/versions/3.11.7/bin/python', [
            '-c',
            'import moto; print(moto.__version__)',
          ])
        : 'not used',
    ],
    ['Load average (1 min) start / end', load.map((l) => l.toFixed(2)).join(' / ')],
    ['Total bench time', secs(Date.now() - startedAt.getTime())],
  ];
  notes.push(
    "Baseline = the original script's pipeline per tag, sequential: `skopeo copy -q --src-tls-verify=false docker://HOST/REPO:TAG docker-archive:FILE` " +
      '(with `--tmpdir`), then `aws s3 cp FILE s3://BUCKET/<label>/<repo>/<tag>.tar --endpoint-url MOTO` (directory: `cp FILE DIR/<label>/<repo>/<tag>.tar`), then `rm FILE`. ' +
      (awsWorks ? 'The real aws CLI is used.' : 'The aws CLI was NOT usable.') +
      ' It has no incremental mode, so its second run is another full run: "Incremental vs baseline full" divides the baseline full time by our incremental time.',
    'Ours = `node dist/ecr-backup.mjs backup --registry URL --to STORE --repositories GLOB --json` (the bundle `npm run build` makes) as a child process, default `--concurrency 4`; ' +
      'full run into an empty store, then an incremental run into the same store. Wall time includes process start-up; "engine" is the report\'s startedAt→finishedAt.',
    "Unique compressed = the fixtures' unique config + layer blob bytes (each counted once). Stored = every object under the run's S3 prefix / every file under the directory " +
      '(ours: blobs, manifests, catalog records and run reports, after the full run). Baseline tars hold layers uncompressed; the layers are random data, so compressed ≈ uncompressed.',
    'Peak RSS = GNU time %M (ru_maxrss) of the CLI process; for the baseline, the largest of its skopeo / aws / cp processes.',
    "Peak temp disk (ours) = peak size of the CLI's dedicated TMPDIR sampled every 50 ms, " +
      'plus every file the CLI held open for writing outside the directory store (sampled from /proc/<pid>/fd). The directory store writes each blob to STORE/.tmp and renames it into place: that is the final copy, not temp space. ' +
      "Baseline: peak size of its work dir (the tar plus skopeo's --tmpdir).",
    'Everything runs on one machine over loopback: the registry, moto (a single Python process, often the bottleneck for S3 writes), the CLI and the baseline compete for the same cores. ' +
      `Other work on the machine (load average above) adds noise: each time is the run with the median wall time of ${options.repeat} repetition(s) (baseline and ours alternate), ` +
      'its breakdown and CPU are from that same run; peak RSS and temp disk are the worst of all repetitions; the spread table shows the range.',
    'Not measured here: network latency (everything is loopback), real S3 (moto is a single Python process that costs about as much CPU per byte as our CLI), gzip-compressible layers. ' +
      '`npx tsx bench/profile.ts` breaks a backup of the 1 GB image down further (CPU profile, memory at the RSS peak, upload part size / queue experiments).',
  );
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
