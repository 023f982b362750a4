// Our side: the real CLI as a child process, the way a user runs it: the bundle `npm run build` makes
// (dist/ecr-backup.mjs, what `npm install -g` puts on PATH), with a dedicated TMPDIR whose size is
// sampled while it runs and a watch on every file it opens for writing.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../schema/contract.ts';
import { runMeasured, Sampler } from './measure.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/ecr-backup.mjs');

export interface OursResult {
  wallMs: number;
  /** startedAt -> finishedAt of the run report: the run without process start-up and module loading. */
  engineMs: number;
  /** Spawn -> report startedAt (node start-up, module loading, listing set-up). */
  startLagMs: number;
  /** Report finishedAt -> process gone (writing the run report to the store, printing, exiting). */
  exitLagMs: number;
  maxRssBytes: number;
  /** CPU time of the CLI process (user + system). */
  cpuMs: number;
  /** Peak bytes in the child's TMPDIR . */
  peakTempBytes: number;
  /** Files the CLI held open for writing outside the store. */
  unexpectedWrites: string[];
  report: RunReport;
}

export function cliEnv(extra: Record<string, string>, childTmp: string): NodeJS.ProcessEnv {
  return { ...process.env, ...extra, TMPDIR: childTmp, NODE_NO_WARNINGS: '1' };
}

export async function runOurs(options: {
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The child's TMPDIR (sampled). */
  childTmp: string;
  /** Where the CLI is allowed to write: the directory store, if any. */
  storeDir?: string;
  rssFile: string;
}): Promise<OursResult> {
  const sampler = new Sampler({
    dirs: [options.childTmp],
    // GNU time opens its -o file before forking, so the CLI inherits that descriptor (open for writing).
    allowedWriteRoots: [...(options.storeDir ? [options.storeDir] : []), options.rssFile],
    intervalMs: 50,
  }).start();
  let run: Awaited<ReturnType<typeof runMeasured>>;
  try {
    run = await runMeasured('node', [CLI, ...options.args, '--json'], {
      cwd: ROOT,
      env: options.env,
      sampler,
      rssFile: options.rssFile,
      allowFailure: true,
    });
  } finally {
    await sampler.stop();
  }
  let report: RunReport;
  try {
    report = JSON.parse(run.stdout) as RunReport;
  } catch {
    throw new Error(
      `ecr-backup ${options.args.join(' ')} exited ${run.exitCode} without a JSON report\nstderr: ${run.stderr.slice(-4000)}`,
    );
  }
  if (run.exitCode !== 0 || report.counts.failed > 0) {
    throw new Error(
      `ecr-backup ${options.args.join(' ')} exited ${run.exitCode}: ${report.failures.map((f) => f.error).join('; ')}\nstderr: ${run.stderr.slice(-2000)}`,
    );
  }
  return {
    wallMs: run.wallMs,
    engineMs: Date.parse(report.finishedAt) - Date.parse(report.startedAt),
    startLagMs: Date.parse(report.startedAt) - run.spawnedAt,
    exitLagMs: run.exitedAt - Date.parse(report.finishedAt),
    maxRssBytes: run.maxRssBytes,
    cpuMs: run.cpuMs,
    peakTempBytes: sampler.peakDirBytes,
    unexpectedWrites: [...sampler.unexpectedWrites],
    report,
  };
}
