// One bench measurement: a workload into one destination, the baseline and our CLI (full, then
// incremental) alternating for each repetition, summed up in the report's row.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestMoto } from '../test/harness/moto.ts';
import type { TestRegistry } from '../test/harness/registry.ts';
import { runBaseline, type BaselineResult } from './baseline.ts';
import { log } from './log.ts';
import { treeBytes } from './measure.ts';
import { runOurs } from './ours.ts';
import { mib, secs, type DestinationKind, type Row, type ServiceCpu } from './report.ts';
import { maxOf, mergeOurs, representative } from './repetitions.ts';
import { BUCKET, s3Bytes } from './s3-destination.ts';
import { serviceCpu, serviceCpuSince } from './service-cpu.ts';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Pushed, Workload } from './workloads.ts';
import { errorText } from '../core/redact.ts';

/** What every measurement shares: the services, the environments and the scratch locations. */
interface MeasureContext {
  registry: TestRegistry;
  moto: TestMoto | undefined;
  s3: S3Client | undefined;
  resetS3(): Promise<void>;
  benchRoot: string;
  /** The measured CLI's environment, its dedicated TMPDIR and where GNU time writes peak RSS. */
  env: NodeJS.ProcessEnv;
  childTmp: string;
  rssFile: string;
  baselineEnv: NodeJS.ProcessEnv;
  repeat: number;
}

/** Measures `workload` into `destination` and fills in `row` (created by the caller, so it is reported even if this throws). */
export async function measureWorkload(
  context: MeasureContext,
  workload: Workload,
  pushed: Pushed,
  destination: DestinationKind,
  row: Row,
): Promise<void> {
  const { registry, moto, s3, resetS3, benchRoot, env, childTmp, rssFile, baselineEnv } = context;
  const pids = { registry: registry.pid, moto: moto?.pid };
  const dirRoot = join(benchRoot, 'stores', `${workload.id}-${destination}`);
  const baselines: (BaselineResult & { storedBytes: number; services: ServiceCpu })[] = [];
  const fulls: NonNullable<Row['full']>[] = [];
  const incrementals: NonNullable<Row['incremental']>[] = [];

  for (let rep = 1; rep <= context.repeat; rep++) {
    const tag = `${workload.id} -> ${destination} [${rep}/${context.repeat}]`;
    // Baseline: a full run (it has no incremental mode).
    try {
      if (destination === 's3') await resetS3();
      log(`${tag}: baseline (skopeo docker-archive + ${destination === 's3' ? 'aws s3 cp' : 'cp'})`);
      const label = `baseline-${workload.id}`;
      const cpu0 = await serviceCpu(pids);
      const result = await runBaseline({
        registryHost: registry.host,
        images: pushed.images,
        destination: destination === 's3' ? { kind: 's3', bucket: BUCKET, endpoint: moto!.url } : { kind: 'dir', root: dirRoot },
        label,
        workDir: join(benchRoot, 'baseline-work'),
        env: baselineEnv,
      });
      const storedBytes = destination === 's3' ? await s3Bytes(s3!, label) : await treeBytes(join(dirRoot, label));
      const services = await serviceCpuSince(pids, cpu0);
      baselines.push({ ...result, storedBytes, services });
      log(`  baseline ${secs(result.wallMs)}, stored ${mib(storedBytes)}, peak temp ${mib(result.peakTempBytes)}`);
    } catch (error) {
      row.errors.push(`baseline: ${errorText(error)}`);
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
        const cpu0 = await serviceCpu(pids);
        const result = await runOurs({ args, env, childTmp, rssFile, ...(destination === 'dir' ? { storeDir } : {}) });
        return { ...result, services: await serviceCpuSince(pids, cpu0) };
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
      row.errors.push(`ours: ${errorText(error)}`);
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

export function newRow(workload: Workload, pushed: Pushed, destination: DestinationKind): Row {
  return {
    workload: workload.id,
    title: workload.title,
    destination,
    images: pushed.images.length,
    uniqueBytes: pushed.uniqueBytes,
    ...(workload.speedTarget !== undefined ? { speedTarget: workload.speedTarget } : {}),
    ...(workload.rssTarget ? { rssTarget: true } : {}),
    errors: [],
  };
}
