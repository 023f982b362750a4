// The contract between the CLI, the state-machine Lambdas and the worker: execution input, work
// items, per-image results and the run report. Every component imports these schemas; none re-types
// them. Inputs are validated once, at the edge, with `parse*` helpers that produce errors naming the
// offending field.
import { z } from 'zod';
import { isDigest, isRepositoryName, isTag } from './names.ts';

const glob = z.string().min(1).max(256);
const RepositoryName = z.string().refine(isRepositoryName, {
  message: 'not a valid repository name (lowercase [a-z0-9] components separated by . _ __ - or /)',
});
const Tag = z.string().refine(isTag, { message: 'not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})' });
const Digest = z.string().refine(isDigest, { message: 'not a sha256 digest (sha256:<64 hex>)' });

export const ArchiveFormat = z.enum(['oci', 'docker-archive']);
export type ArchiveFormat = z.infer<typeof ArchiveFormat>;

/** docker-archive only: how each tar is compressed in the store (`.tar`, `.tar.gz`, `.tar.zst`). */
export const ArchiveCompression = z.enum(['none', 'gzip', 'zstd']);
export type ArchiveCompression = z.infer<typeof ArchiveCompression>;

/** Top-level store prefixes an archive label must not shadow. */
const RESERVED_ARCHIVE_LABELS: readonly string[] = ['blobs', 'catalog', 'runs'];
/** docker-archive only: the first key segment of every archive (`<label>/<repository>/<tag>.tar`); default the region. */
export const ArchiveLabel = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'not a valid label ([A-Za-z0-9][A-Za-z0-9._-]{0,62})')
  .refine((label) => !RESERVED_ARCHIVE_LABELS.includes(label), { message: `must not be one of ${RESERVED_ARCHIVE_LABELS.join(', ')}` });
/** docker-archive only: the platform taken from a multi-arch source (`os/arch[/variant]`, default linux/amd64). */
export const PlatformName = z
  .string()
  .regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'not a platform (os/arch[/variant], e.g. linux/arm64)');

export const RestoreTarget = z
  .object({
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'not an AWS region code')
      .optional(),
    accountId: z
      .string()
      .regex(/^\d{12}$/, 'must be a 12-digit AWS account id')
      .optional(),
    /** Cross-account restore: a role in the target account to assume (must be in the stack's restoreTargetRoles). */
    roleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'not an IAM role ARN (arn:aws:iam::<account>:role/<name>)')
      .optional(),
    repositoryPrefix: z
      .string()
      .regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*\/?$/, 'not a valid repository prefix')
      .optional(),
  })
  .strict()
  .refine((t) => !t.roleArn || !t.accountId || t.roleArn.split(':')[4] === t.accountId, {
    path: ['accountId'],
    message: 'accountId differs from the account of roleArn',
  });
export type RestoreTarget = z.infer<typeof RestoreTarget>;

/** How a run copies, shared by the execution input and each of its batches. */
const runSettings = {
  asOf: z.iso.datetime({ offset: true }).optional(),
  target: RestoreTarget.optional(),
  /**
   * Restore: also set the recorded lifecycle and repository policies on repositories the restore
   * creates. Off by default: a repository policy grants access, and whoever can write catalog/ wrote it.
   */
  applyPolicies: z.boolean().optional(),
  dryRun: z.boolean().optional(),
  /** Backup only: the stored form (default: the stack's imageFormat). A restore follows each record's format. */
  format: ArchiveFormat.optional(),
  /** docker-archive only: `<label>/<repository>/<tag>.tar[.gz|.zst]`, compression, and the platform of a multi-arch source. */
  label: ArchiveLabel.optional(),
  compression: ArchiveCompression.optional(),
  platform: PlatformName.optional(),
};

/** One image named exactly: `repository:tag`. */
export const PushedImage = z.object({ repository: RepositoryName, tag: Tag }).strict();
export type PushedImage = z.infer<typeof PushedImage>;
/** The most images one execution input may name (~100 bytes each: ~100 KiB of input). */
export const MAX_PUSHED_IMAGES = 1000;

/** What a Step Functions execution (or `ecr-backup run`) is started with. `{}` is a scheduled backup. */
export const ExecutionInput = z
  .object({
    mode: z.enum(['backup', 'restore']).default('backup'),
    repositories: z.array(glob).max(100).optional(),
    tags: z.array(glob).max(100).optional(),
    excludeTags: z.array(glob).max(100).optional(),
    includeUntagged: z.boolean().optional(),
    /**
     * Backup only: exactly these images (a push-started run, see lambdas/start-on-push.ts).
     * Applied on top of the other filters; bounded so the input stays far below Step Functions' 256 KiB.
     */
    images: z.array(PushedImage).min(1).max(MAX_PUSHED_IMAGES).optional(),
    ...runSettings,
  })
  .strict()
  .superRefine((input, ctx) => {
    for (const field of ['format', 'label', 'compression', 'platform'] as const) {
      if (input[field] === undefined) continue;
      if (input.mode === 'restore')
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `${field} applies to backup runs only (a restore follows each record's format)`,
        });
      else if (field !== 'format' && input.format === 'oci')
        ctx.addIssue({ code: 'custom', path: [field], message: `${field} applies to the docker-archive format only` });
    }
    if (input.mode === 'backup' && input.asOf)
      ctx.addIssue({ code: 'custom', path: ['asOf'], message: 'asOf applies to restore runs only' });
    if (input.mode === 'backup' && input.applyPolicies)
      ctx.addIssue({ code: 'custom', path: ['applyPolicies'], message: 'applyPolicies applies to restore runs only' });
    if (input.mode === 'restore' && input.images)
      ctx.addIssue({ code: 'custom', path: ['images'], message: 'images applies to backup runs only' });
    if (input.mode === 'backup' && input.target)
      ctx.addIssue({ code: 'custom', path: ['target'], message: 'target applies to restore runs only' });
  });
export type ExecutionInput = z.infer<typeof ExecutionInput>;

/** One image to copy. Backup: source repository + tag (or digest for untagged). Restore: a catalog entry. */
export const WorkItem = z
  .object({
    repository: RepositoryName,
    tag: Tag.optional(),
    digest: Digest.optional(),
    /** Compressed bytes the image references, when the lister knows it; used to size batches. */
    sizeBytes: z.number().int().nonnegative().optional(),
    /** Backup: the digest the store's current record of this tag holds, when the tag is being re-copied (it may have moved). */
    previousDigest: Digest.optional(),
    /** Backup: verify found this stored image damaged (core/engine/damage-marks.ts); it is copied again in repair mode. */
    repair: z.literal(true).optional(),
  })
  .strict()
  .refine((item) => item.tag !== undefined || item.digest !== undefined, { message: 'a work item needs a tag or a digest' });
export type WorkItem = z.infer<typeof WorkItem>;

const ImageStatus = z.enum(['copied', 'unchanged', 'failed', 'planned']);

/** The outcome for one image, written by the worker (one per image) and collected in the run report. */
export const ImageResult = z.object({
  repository: z.string(),
  /** Where the image went on restore (repository prefix applied). */
  targetRepository: z.string().optional(),
  tag: z.string().optional(),
  digest: z.string().optional(),
  /** Backup: the digest the tag held in the store before this run; differs from `digest` when the tag moved. */
  previousDigest: z.string().optional(),
  status: ImageStatus,
  blobsCopied: z.number().int().nonnegative(),
  bytesCopied: z.number().int().nonnegative(),
  /** Bytes the destination already had (shared layers, earlier runs). */
  bytesDeduplicated: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  error: z.string().optional(),
  /** docker-archive images: the archive written (backup) or read (restore). */
  archive: z
    .object({
      key: z.string(),
      sha256: z.string(),
      size: z.number().int().nonnegative(),
      compression: ArchiveCompression,
      /** The platform archived: for a multi-arch source, the one chosen. */
      platform: z.string(),
      /** Every platform the source offered (more than one: only `platform` was kept). */
      sourcePlatforms: z.array(z.string()).optional(),
      /** Restore: the digest the registry gave the pushed manifest (never the source's). */
      restoredDigest: z.string().optional(),
    })
    .optional(),
});
export type ImageResult = z.infer<typeof ImageResult>;

export const RunCounts = z.object({
  images: z.number().int().nonnegative(),
  copied: z.number().int().nonnegative(),
  unchanged: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  planned: z.number().int().nonnegative(),
  bytesCopied: z.number().int().nonnegative(),
  bytesDeduplicated: z.number().int().nonnegative(),
});
export type RunCounts = z.infer<typeof RunCounts>;

/**
 * What a run did with a repository's settings (tag mutability, scan on push, encryption, policies,
 * tags). Backup: `recorded` (new or changed settings written to the store), `unchanged`, or
 * `unrecorded` (see problems). Restore into ECR: `created` (with the recorded settings when
 * settingsApplied) or `exists` (left unchanged; differences from the backup listed). Either mode:
 * `skipped`, a repository, tag or catalog record left out of the run (problems say why). Backup:
 * `deleted`, a stored repository the source no longer has (its tags are in `deletedAtSource`).
 */
export const RepositoryNote = z.object({
  repository: z.string(),
  targetRepository: z.string().optional(),
  action: z.enum(['recorded', 'unchanged', 'unrecorded', 'created', 'exists', 'skipped', 'deleted']),
  settingsApplied: z.boolean().optional(),
  differences: z.array(z.string()).optional(),
  skipped: z.array(z.string()).optional(),
  problems: z.array(z.string()).optional(),
});
export type RepositoryNote = z.infer<typeof RepositoryNote>;

/**
 * A tag a backup found deleted at the source (present in the store's latest state, absent from the
 * source's listing of its repository). The store keeps a tombstone at `deletedAt`; restoring
 * `--as-of` an earlier time still restores the tag at `lastDigest`.
 */
export const DeletedTag = z.object({
  repository: z.string(),
  tag: z.string(),
  /** The digest the tag held in its last backup before the deletion. */
  lastDigest: z.string(),
  /** When the run recorded the deletion (the tombstone's time), ISO 8601. */
  deletedAt: z.string(),
});
export type DeletedTag = z.infer<typeof DeletedTag>;

export const RunReport = z.object({
  runId: z.string(),
  mode: z.enum(['backup', 'restore']),
  startedAt: z.string(),
  finishedAt: z.string(),
  counts: RunCounts,
  failures: z.array(ImageResult),
  results: z.array(ImageResult),
  /** One entry per repository whose settings the run recorded, applied or compared. */
  repositoryNotes: z.array(RepositoryNote).optional(),
  /** Backup: tags deleted at the source since the last run (each recorded once, as a tombstone). */
  deletedAtSource: z.array(DeletedTag).optional(),
});
export type RunReport = z.infer<typeof RunReport>;

export function summarize(results: readonly ImageResult[]): RunCounts {
  const counts: RunCounts = {
    images: results.length,
    copied: 0,
    unchanged: 0,
    failed: 0,
    planned: 0,
    bytesCopied: 0,
    bytesDeduplicated: 0,
  };
  for (const r of results) {
    counts[r.status] += 1;
    counts.bytesCopied += r.bytesCopied;
    counts.bytesDeduplicated += r.bytesDeduplicated;
  }
  return counts;
}

/** Turns a zod error into one line per problem, each naming the field path: `repositories.0: ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`).join('; ');
}

export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

export function parseExecutionInput(raw: unknown): ExecutionInput {
  const result = ExecutionInput.safeParse(raw ?? {});
  if (!result.success) throw new InvalidInputError(`invalid execution input: ${describeIssues(result.error)}`);
  return result.data;
}

// ---- Workflow contract (Step Functions <-> Lambdas <-> Fargate worker) ----------------------------
// The listing Lambda writes the work as batches to the store under runs/<runId>/ and hands Step
// Functions only references: payloads stop at 256 KiB and ECS container overrides at 8 KiB, while an
// account may hold tens of thousands of tags. Batches are sized by image bytes and count, which
// balances data volume per Fargate task (Step Functions' own ItemBatcher can only size by JSON bytes).

/** One Fargate task's work: `runs/<runId>/batches/<index>.json`. */
export const WorkBatch = z.object({
  runId: z.string().min(1),
  index: z.number().int().nonnegative(),
  mode: z.enum(['backup', 'restore']),
  ...runSettings,
  items: z.array(WorkItem).min(1),
});
export type WorkBatch = z.infer<typeof WorkBatch>;

/** An element of the Map's item list (`runs/<runId>/batches.json`): where a batch is, and its weight. */
export const BatchRef = z.object({
  batchKey: z.string(),
  index: z.number().int().nonnegative(),
  items: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
});
export type BatchRef = z.infer<typeof BatchRef>;

/** What the listing Lambda returns to the state machine: counts and keys, never the items. */
export const ListingOutput = z.object({
  runId: z.string(),
  mode: z.enum(['backup', 'restore']),
  startedAt: z.string(),
  bucket: z.string(),
  /** Key of the JSON array of BatchRef that the distributed Map's ItemReader reads. */
  batchesKey: z.string(),
  batchCount: z.number().int().nonnegative(),
  itemCount: z.number().int().nonnegative(),
  /** Images skipped at listing time because the store already holds them under the same tag. */
  unchangedCount: z.number().int().nonnegative(),
  /** Backup (not a dry run): repositories whose new or changed settings the listing recorded in the store. */
  settingsRecorded: z.number().int().nonnegative().optional(),
  /** Backup (not a dry run): tags found deleted at the source and recorded as such (listed in runKeys.deleted). */
  deletedCount: z.number().int().nonnegative().optional(),
});
export type ListingOutput = z.infer<typeof ListingOutput>;

/**
 * Store-relative keys of a run's files: the grammar of `runs/`, shared with the state machine (its
 * ItemReaders and ResultWriter) and IAM. Code reads and writes these files through
 * core/store/run-files.ts; the sharded listing's keys (schema/listing-shards.ts) and the drill's
 * report (schema/drill.ts) are built on `dir`.
 */
export const runKeys = {
  /** Everything of every run: the prefix that run-file expiry and the stack's grants cover. */
  all: 'runs/',
  /** Each repository's last complete backup time (the dashboard's backup-age metric). */
  lastBackups: 'runs/_status/last-backups.json',
  /** Damage marks `<repository>/<digest hex>.json` (core/engine/damage-marks.ts), below `all` so every writer role may write them. */
  damagedDir: 'runs/_status/damaged/',
  damaged: (repository: string, digestHex: string) => `runs/_status/damaged/${repository}/${digestHex}.json`,
  /** Where the distributed Map's ResultWriter writes (state-machine/map-results.ts), no trailing slash. */
  mapResults: 'runs/map-results',
  dir: (runId: string) => `runs/${runId}/`,
  batches: (runId: string) => `runs/${runId}/batches.json`,
  batch: (runId: string, index: number) => `runs/${runId}/batches/${String(index).padStart(6, '0')}.json`,
  resultsDir: (runId: string) => `runs/${runId}/results/`,
  result: (runId: string, batch: number, item: number) =>
    `runs/${runId}/results/${String(batch).padStart(6, '0')}/${String(item).padStart(6, '0')}.json`,
  /** A JSON array of ImageResult, one per item of the batch in order: written once the batch finished. */
  batchResults: (runId: string, batch: number) => `runs/${runId}/results/${String(batch).padStart(6, '0')}.json`,
  report: (runId: string) => `runs/${runId}/report.json`,
  /** The human-readable twin of report.json. */
  reportMarkdown: (runId: string) => `runs/${runId}/report.md`,
  /** The prune Lambda's report after a backup run. */
  prune: (runId: string) => `runs/${runId}/prune.json`,
  /** A JSON array of DeletedTag: what the listing recorded as deleted at the source. */
  deleted: (runId: string) => `runs/${runId}/deleted.json`,
  notesDir: (runId: string) => `runs/${runId}/notes/`,
  /**
   * A JSON array of RepositoryNote: one per worker batch (`<index>.json`), the listing's
   * (`listing.json`) and the sharded listing's plan step (`plan.json`: invalid repository names).
   */
  notes: (runId: string, source: number | 'listing' | 'plan') =>
    `runs/${runId}/notes/${typeof source === 'number' ? String(source).padStart(6, '0') : source}.json`,
  /** The run id of a `report` key, or undefined for any other key. */
  reportRunId: (key: string) => /^runs\/([^/]+)\/report\.json$/.exec(key)?.[1],
};

/** The tag the EcrBackup construct puts on its state machine, naming its stack (`run --stack`). */
export const STACK_NAME_TAG = 'ecr-backup:stack-name';
