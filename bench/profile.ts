// `npx tsx bench/profile.ts [--cpu-prof DIR] [VARIANT...]`: where does a backup to moto S3 spend
// its time and memory? Runs the CLI for each VARIANT and prints wall / engine time, peak RSS, the
// CLI's CPU and moto's CPU. With --cpu-prof, node writes a .cpuprofile per run into DIR and the top
// self-time functions of the main thread are printed.
//
// VARIANT = WORKLOAD:CONCURRENCY[:bundle][:queue=N][:part=MIB]
//   WORKLOAD   big (one 4 x 256 MiB image) or unrelated (4 x 50 MiB images)
//   bundle     run an esbuild bundle of the CLI instead of `node --import tsx cli/main.ts`
//   gc=MS      force a full garbage collection every MS ms (diagnoses RSS held by dead Buffers)
//   queue, part  override lib-storage's Upload queueSize / partSize (MiB) through a preload that
//              patches Upload.prototype.done (the tsx run only: a bundle has its own copy): an
//              experiment, not a setting the CLI has
// Default: big:4 big:1 unrelated:4 unrelated:1
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startRegistry } from '../test/harness/registry.ts';
import { startMoto } from '../test/harness/moto.ts';
import { cleanupFixtures } from '../test/harness/fixture-scratch.ts';
import { pushImage, pushRandomImages } from '../test/harness/fixtures.ts';
import { writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runMeasured } from './measure.ts';
import { ROOT } from './ours.ts';

const MiB = 1024 * 1024;
const argv = process.argv.slice(2);
const profIndex = argv.indexOf('--cpu-prof');
const profDir = profIndex >= 0 ? argv.splice(profIndex, 2)[1] : undefined;
const variants = argv.length ? argv : ['big:4', 'big:1', 'unrelated:4', 'unrelated:1'];

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Microseconds of samples that are not (idle). */
function busy(profile: Profile): number {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  return profile.samples.reduce((sum, id, i) => sum + (idle.has(id) ? 0 : (profile.timeDeltas[i] ?? 0)), 0);
}

let scratch: string | undefined;
async function scratchDir(): Promise<string> {
  scratch ??= await mkdtemp(join(tmpdir(), 'ecr-backup-profile-'));
  return scratch;
}

let bundlePath: Promise<string> | undefined;
/** The CLI bundled by esbuild into one ESM file, as the worker image is built. */
function bundle(): Promise<string> {
  bundlePath ??= (async () => {
    const out = join(await scratchDir(), 'cli.mjs');
    await promisify(execFile)(join(ROOT, 'node_modules/.bin/esbuild'), [
      join(ROOT, 'cli/main.ts'),
      '--bundle',
      '--platform=node',
      '--target=node20',
      '--format=esm',
      '--main-fields=module,main',
      '--log-level=error',
      "--banner:js=import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      `--outfile=${out}`,
    ]);
    return out;
  })();
  return bundlePath;
}

/** A --require preload that overrides Upload's queueSize / partSize from BENCH_UPLOAD_QUEUE / BENCH_UPLOAD_PART_MIB. */
async function uploadTuningPreload(): Promise<string> {
  const path = join(await scratchDir(), 'upload-tuning.cjs');
  await writeFile(
    path,
    `const { Upload } = require(${JSON.stringify(join(ROOT, 'node_modules/@aws-sdk/lib-storage'))});
const done = Upload.prototype.done;
Upload.prototype.done = function () {
  if (process.env.BENCH_UPLOAD_QUEUE) this.queueSize = Number(process.env.BENCH_UPLOAD_QUEUE);
  if (process.env.BENCH_UPLOAD_PART_MIB) this.partSize = Number(process.env.BENCH_UPLOAD_PART_MIB) * 1024 * 1024;
  return done.call(this);
};
`,
  );
  return path;
}

/**
 * A --require preload that samples process.memoryUsage() every 20 ms and writes the peaks (and the
 * breakdown at the RSS peak) as JSON to BENCH_MEMORY_FILE at exit.
 */
async function memorySamplerPreload(): Promise<string> {
  const path = join(await scratchDir(), 'memory-sampler.cjs');
  await writeFile(
    path,
    `const { writeFileSync } = require('node:fs');
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
let atRssPeak = {};
const sample = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k]);
  if (m.rss >= peak.rss) atRssPeak = m;
};
setInterval(sample, 20).unref();
process.on('exit', () => { sample(); writeFileSync(process.env.BENCH_MEMORY_FILE, JSON.stringify({ peak, atRssPeak })); });
`,
  );
  return path;
}

/** A --require preload that runs a full GC every BENCH_FORCE_GC_MS ms (needs --expose-gc). */
async function forcedGcPreload(): Promise<string> {
  const path = join(await scratchDir(), 'forced-gc.cjs');
  await writeFile(path, `setInterval(() => globalThis.gc?.(), Number(process.env.BENCH_FORCE_GC_MS)).unref();\n`);
  return path;
}

/** Self time per function from a .cpuprofile, largest first. */
function topSelf(profile: Profile, n = 12): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(`file://${ROOT}`, '')}`;
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
}

const registry = await startRegistry();
const moto = await startMoto().catch(async (error: unknown) => {
  await registry.stop();
  throw error;
});
const s3 = new S3Client({
  endpoint: moto.url,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});
try {
  const needs = new Set(variants.map((v) => v.split(':')[0]));
  if (needs.has('big')) await pushImage(registry, { repository: 'profile/big', layerSizes: [256 * MiB, 256 * MiB, 256 * MiB, 256 * MiB] });
  if (needs.has('unrelated')) await pushRandomImages(registry, { count: 4, size: 50 * MiB, repository: (i) => `profile/unrelated-${i}` });
  for (const variant of variants) {
    const [workload, concurrency = '4', ...flags] = variant.split(':');
    const flag = (name: string) =>
      flags.find((f) => f === name || f.startsWith(`${name}=`))?.split('=')[1] ?? (flags.includes(name) ? '' : undefined);
    const memoryFile = join(await scratchDir(), 'memory.json');
    await rm(memoryFile, { force: true });
    const nodeArgs: string[] = ['--require', await memorySamplerPreload()];
    // gc=MS: force a full GC every MS ms (does dead-but-unfreed Buffer memory explain the RSS peak?)
    if (flag('gc')) nodeArgs.push('--expose-gc', '--require', await forcedGcPreload());
    if (flag('queue') !== undefined || flag('part') !== undefined) nodeArgs.push('--require', await uploadTuningPreload());
    const entry = flag('bundle') !== undefined ? await bundle() : join(ROOT, 'cli/main.ts');
    if (flag('bundle') === undefined) nodeArgs.push('--import', 'tsx');
    await moto.reset();
    await s3.send(new CreateBucketCommand({ Bucket: 'profile' }));
    const runProfDir = profDir ? join(profDir, variant.replace(':', '-')) : undefined;
    if (runProfDir) {
      await rm(runProfDir, { recursive: true, force: true });
      await mkdir(runProfDir, { recursive: true });
    }
    const motoBefore = await cpuSeconds(moto.pid);
    const run = await runMeasured(
      'node',
      [
        ...(runProfDir ? ['--cpu-prof', '--cpu-prof-dir', runProfDir] : []),
        ...nodeArgs,
        entry,
        'backup',
        '--registry',
        registry.url,
        '--to',
        's3://profile/run',
        '--repositories',
        workload === 'big' ? 'profile/big' : 'profile/unrelated-*',
        '--concurrency',
        concurrency,
        '--json',
      ],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          ...moto.env,
          NODE_NO_WARNINGS: '1',
          BENCH_MEMORY_FILE: memoryFile,
          ...(flag('gc') ? { BENCH_FORCE_GC_MS: flag('gc') } : {}),
          ...(flag('queue') ? { BENCH_UPLOAD_QUEUE: flag('queue') } : {}),
          ...(flag('part') ? { BENCH_UPLOAD_PART_MIB: flag('part') } : {}),
        },
        rssFile: join(registry.dir, 'rss.txt'),
        allowFailure: true,
      },
    );
    const motoCpu = (await cpuSeconds(moto.pid)) - motoBefore;
    const report = JSON.parse(run.stdout) as { startedAt: string; finishedAt: string; counts: { failed: number; bytesCopied: number } };
    const engine = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
    console.log(
      `${variant.padEnd(14)} wall ${(run.wallMs / 1000).toFixed(2)} s, engine ${engine.toFixed(2)} s, ${(report.counts.bytesCopied / MiB / engine).toFixed(0)} MiB/s, ` +
        `peak RSS ${(run.maxRssBytes / MiB).toFixed(0)} MiB, CLI CPU ${(run.cpuMs / 1000).toFixed(2)} s, moto CPU ${motoCpu.toFixed(2)} s, failed ${report.counts.failed}`,
    );
    const memory = JSON.parse(await readFile(memoryFile, 'utf8').catch(() => '{}')) as {
      peak?: Record<string, number>;
      atRssPeak?: Record<string, number>;
    };
    if (memory.atRssPeak) {
      const m = memory.atRssPeak;
      const f = (n: number | undefined) => `${((n ?? 0) / MiB).toFixed(0)}`;
      console.log(
        `    memory at the sampled RSS peak (MiB): rss ${f(m.rss)}, heap used ${f(m.heapUsed)} of ${f(m.heapTotal)}, external ${f(m.external)} (array buffers ${f(m.arrayBuffers)}); ` +
          `peaks: heap used ${f(memory.peak?.heapUsed)}, external ${f(memory.peak?.external)}`,
      );
    }
    if (runProfDir) {
      // tsx's loader thread writes a second profile that is almost all idle: take the busiest one.
      const files = await readdir(runProfDir);
      const profiles = await Promise.all(files.map(async (f) => JSON.parse(await readFile(join(runProfDir, f), 'utf8')) as Profile));
      const main = profiles.sort((a, b) => busy(b) - busy(a))[0];
      if (main) for (const line of topSelf(main)) console.log(`    ${line}`);
    }
  }
} finally {
  await Promise.allSettled([registry.stop(), moto.stop()]);
  await cleanupFixtures();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}
