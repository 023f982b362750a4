// A restore drill: restores a random sample of the store's current images into a scratch repository
// prefix of a registry with the normal copy engine, reads every restored tag back from the registry
// and compares its digest with the store's record, measures the restore's throughput and
// extrapolates it to the whole store (the RTO to expect), deletes the scratch images, and writes
// runs/<drill>/drill.json. The CLI (`ecr-backup drill`) and the stack's scheduled drill task run it.
import { DEFAULT_SCRATCH_ROOT, DrillReport, type DrillImage } from '../../schema/drill.ts';
import type { WorkItem } from '../../schema/contract.ts';
import { planImages } from '../engine/plan.ts';
import { newRunId } from '../engine/report.ts';
import { copyImages } from '../engine/run.ts';
import type { ImageEndpoint } from '../model/endpoint.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { isArchiveRecord } from '../store/layout.ts';
import { storeStats } from '../store/stats.ts';
import { deleteScratchImage, deleteScratchRepository } from './scratch.ts';
import { errorText } from '../redact.ts';

export interface DrillOptions {
  store: BackupStore;
  registry: ImageEndpoint;
  /** Images to restore; 'all' for every current image. */
  sample: number | 'all';
  /** Scratch repository prefix (ends in `/`); default `<scratchRoot><drill id>/`. */
  prefix?: string;
  /** @default 'ecr-backup-drill/' */
  scratchRoot?: string;
  concurrency?: number;
  /** Picks the sample (tests pass a deterministic one). @default Math.random */
  random?: () => number;
}

export async function runDrill(options: DrillOptions): Promise<DrillReport> {
  const started = new Date();
  const drillId = newRunId('drill').toLowerCase();
  const prefix = options.prefix ?? `${options.scratchRoot ?? DEFAULT_SCRATCH_ROOT}${drillId}/`;
  const { store, registry } = options;

  // The population: every tag's current record, in the digest-exact oci form.
  const tagged = await planImages(store, {});
  const records = await store.describe(tagged);
  const population = records.filter((r) => !isArchiveRecord(r) && r.tag !== undefined);
  const picked = pick(population, options.sample === 'all' ? population.length : options.sample, options.random ?? Math.random);
  const items: WorkItem[] = picked.map((r) => ({ repository: r.repository, tag: r.tag!, sizeBytes: r.imageBytes }));

  // Scratch repositories get none of the originals' recorded settings (policies, tags, KMS keys):
  // the source hides them, so an ECR destination creates plain repositories that the drill deletes.
  const source: ImageEndpoint = {
    description: store.description,
    listRepositories: () => store.listRepositories(),
    repository: (name) => store.repository(name),
  };
  const restoreStart = Date.now();
  const results = await copyImages({
    source,
    destination: registry,
    items,
    repositoryPrefix: prefix,
    imageConcurrency: options.concurrency ?? 4,
    blobConcurrency: (options.concurrency ?? 4) * 2,
    recordSettings: false,
  });
  const restoreMs = Date.now() - restoreStart;
  const resultOf = new Map(results.map((r) => [`${r.repository}:${r.tag}`, r]));

  // Every restored tag, read back from the registry: its digest must be the record's.
  const images: DrillImage[] = await Promise.all(
    picked.map(async (record): Promise<DrillImage> => {
      const result = resultOf.get(`${record.repository}:${record.tag}`) ?? {
        status: 'failed' as const,
        error: 'no result from the restore',
        durationMs: 0,
      };
      const scratchRepository = `${prefix}${record.repository}`;
      const base = {
        repository: record.repository,
        tag: record.tag!,
        scratchRepository,
        expectedDigest: record.digest,
        imageBytes: record.imageBytes,
        durationMs: result.durationMs,
      };
      if (result.status === 'failed') return { ...base, status: 'failed', error: result.error ?? 'restore failed' };
      try {
        const restoredDigest = (await registry.repository(scratchRepository).getManifest({ tag: record.tag! })).descriptor.digest;
        return restoredDigest === record.digest
          ? { ...base, restoredDigest, status: 'passed' }
          : {
              ...base,
              restoredDigest,
              status: 'failed',
              error: `${scratchRepository}:${record.tag} restored as ${restoredDigest}, the record says ${record.digest}`,
            };
      } catch (error) {
        return {
          ...base,
          status: 'failed',
          error: `${scratchRepository}:${record.tag}: cannot read the restored image back: ${errorText(error)}`,
        };
      }
    }),
  );

  // Clean up whatever reached the registry, passed or not.
  const cleanup = { deleted: 0, problems: [] as string[] };
  for (const image of images) {
    // By the digest the registry serves; an image pushed but not readable back, by the record's.
    const pushed = resultOf.get(`${image.repository}:${image.tag}`)?.status !== 'failed';
    const digest = image.restoredDigest ?? (pushed ? image.expectedDigest : undefined);
    if (!digest) continue;
    try {
      await deleteScratchImage(registry, image.scratchRepository, digest);
      cleanup.deleted += 1;
    } catch (error) {
      cleanup.problems.push(`${image.scratchRepository}@${digest}: ${errorText(error)}`);
    }
  }
  for (const repository of new Set(images.map((i) => i.scratchRepository))) {
    await deleteScratchRepository(registry, repository).catch((error: unknown) =>
      cleanup.problems.push(`${repository}: ${errorText(error)}`),
    );
  }

  const stats = await storeStats(store);
  const sampleBytes = images.reduce((n, i) => n + i.imageBytes, 0);
  const throughput = restoreMs > 0 ? (sampleBytes * 1000) / restoreMs : 0;
  const failed = images.filter((i) => i.status === 'failed').length;
  const report: DrillReport = {
    drillId,
    store: store.description,
    registry: registry.description,
    scratchPrefix: prefix,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    restoreMs,
    storeImages: population.length,
    sampled: images.length,
    passed: images.length - failed,
    failed,
    sampleBytes,
    throughputBytesPerSecond: Math.round(throughput),
    rto: {
      storeBytes: stats.totals.currentLogicalBytes,
      estimatedSeconds: throughput > 0 ? Math.round((stats.totals.currentLogicalBytes / throughput) * 10) / 10 : null,
    },
    storeStats: {
      storedBytes: stats.totals.blobBytes + stats.totals.archiveBytes,
      logicalBytes: stats.totals.logicalBytes,
      dedupRatio: stats.totals.dedupRatio,
    },
    cleanup,
    images,
    // A drill of an empty store proves nothing: it fails.
    ok: images.length > 0 && failed === 0 && cleanup.problems.length === 0,
  };
  await store.runs.writeDrillReport(drillId, DrillReport.parse(report));
  return report;
}

/** `count` distinct elements, uniformly at random (a partial Fisher-Yates shuffle), in store order. */
function pick<T>(items: readonly T[], count: number, random: () => number): T[] {
  const indexes = items.map((_, i) => i);
  const n = Math.min(count, items.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (indexes.length - i));
    [indexes[i], indexes[j]] = [indexes[j]!, indexes[i]!];
  }
  return indexes
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => items[i]!);
}
