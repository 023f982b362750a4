// The restore drill's report (`ecr-backup drill`, and the stack's scheduled drill task): what was
// restored into the scratch prefix, whether every digest matched the record, how fast it went, the
// RTO that speed implies for the whole store, and whether the scratch images were deleted.
import { z } from 'zod';
import { runKeys } from './contract.ts';

export const DrillImage = z.object({
  repository: z.string(),
  tag: z.string(),
  /** Where the drill restored it: the scratch prefix + repository. */
  scratchRepository: z.string(),
  /** The digest the store's record holds. */
  expectedDigest: z.string(),
  /** The digest the registry serves for the restored tag (read back after the restore). */
  restoredDigest: z.string().optional(),
  status: z.enum(['passed', 'failed']),
  imageBytes: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  error: z.string().optional(),
});
export type DrillImage = z.infer<typeof DrillImage>;

export const DrillReport = z.object({
  drillId: z.string(),
  store: z.string(),
  registry: z.string(),
  scratchPrefix: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** Restore time of the sample (listing and cleanup excluded). */
  restoreMs: z.number().nonnegative(),
  /** Tagged oci images the store holds now (the population sampled); docker-archive records are not drilled (they keep the image ID, not the digest). */
  storeImages: z.number().int().nonnegative(),
  sampled: z.number().int().nonnegative(),
  passed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  /** Image bytes of the sample (each image's compressed size, as recorded). */
  sampleBytes: z.number().int().nonnegative(),
  throughputBytesPerSecond: z.number().nonnegative(),
  /** Extrapolation: the current tags' bytes (store stats, currentLogicalBytes) at the measured throughput. */
  rto: z.object({ storeBytes: z.number().int().nonnegative(), estimatedSeconds: z.number().nonnegative().nullable() }),
  /** The store's size while the drill ran (store stats): unique bytes held, bytes of all records, their ratio. */
  storeStats: z.object({
    storedBytes: z.number().int().nonnegative(),
    logicalBytes: z.number().int().nonnegative(),
    dedupRatio: z.number().nullable(),
  }),
  cleanup: z.object({ deleted: z.number().int().nonnegative(), problems: z.array(z.string()) }),
  images: z.array(DrillImage),
  /** True when every sampled image restored with its recorded digest and the scratch images were deleted. */
  ok: z.boolean(),
});
export type DrillReport = z.infer<typeof DrillReport>;

/** Where drills restore unless told otherwise: `<root><drill id>/<repository>`. */
export const DEFAULT_SCRATCH_ROOT = 'ecr-backup-drill/';

/** Store-relative key of a drill's report. */
export const drillReportKey = (drillId: string) => `${runKeys.dir(drillId)}drill.json`;

/** Metrics the scheduled drill publishes (namespace: the stack's, dimension-less). */
export const DRILL_METRICS = {
  /** 1 when the drill passed, 0 when it failed. */
  passed: 'DrillPassed',
  imagesFailed: 'DrillImagesFailed',
  throughput: 'DrillThroughputBytesPerSecond',
  rtoSeconds: 'DrillEstimatedRtoSeconds',
  storedBytes: 'StoreStoredBytes',
  dedupRatio: 'StoreDedupRatio',
} as const;

/** The scheduled drill task's own environment variables (besides STORE_URL, AWS_REGION, METRICS_NAMESPACE). */
export const DRILL_ENV = {
  /** Images per drill, or `all`. */
  SAMPLE: 'DRILL_SAMPLE',
  /** Scratch repositories are `<root><drill id>/<repository>`. */
  SCRATCH_ROOT: 'DRILL_SCRATCH_ROOT',
} as const;
