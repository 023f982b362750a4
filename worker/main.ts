// Fargate entrypoint. Reads the WorkBatch at BATCH_KEY from the store, copies its images (backup:
// ECR -> store; restore: store -> the target ECR registry) and writes one result object per image
// as each finishes, so a task that dies part-way still leaves what it did, and at the end all the
// batch's results in one object (what the summary reads) and the batch's repository notes (restore: repositories created or compared) for the run report. Exits
// non-zero only when the batch could not run at all; failed images are results, not task failures.
import type { RepositoryNote } from '../schema/contract.ts';
import { ENV, loadWorkerEnvironment } from '../schema/environment.ts';
import { copyImages } from '../core/engine/run.ts';
import { Copier } from '../core/engine/copy.ts';
import { repairMarked } from '../core/engine/damage-marks.ts';
import { archiveHandler } from '../core/archive/archive.ts';
import { EcrEndpoint } from '../core/registry/ecr.ts';
import { targetEcr } from '../core/registry/target-account.ts';
import { openBackupStore } from '../core/store/url.ts';
import { log } from '../core/log.ts';

async function main(): Promise<void> {
  const env = loadWorkerEnvironment();
  const batchKey = env[ENV.BATCH_KEY];
  const runId = batchKey.split('/')[1]!;
  const store = openBackupStore(env[ENV.STORE_URL], { runId });
  const batch = await store.runs.readBatch(batchKey);
  log('info', 'batch started', { runId, batch: batch.index, mode: batch.mode, images: batch.items.length });

  const ecr = (target = batch.target) => {
    const region = target?.region ?? env[ENV.AWS_REGION];
    return new EcrEndpoint({ region, ...targetEcr(target, region, runId), registryUrl: env[ENV.ECR_REGISTRY_URL] });
  };
  const registry = ecr();
  const view = batch.mode === 'restore' && batch.asOf ? store.atTime(new Date(batch.asOf)) : store;
  const [source, destination] = batch.mode === 'backup' ? [registry, store] : [view, registry];

  const notes: RepositoryNote[] = [];
  const archive = archiveHandler({
    mode: batch.mode,
    store: view,
    registry,
    format: batch.format ?? env[ENV.IMAGE_FORMAT],
    settings: { label: batch.label, compression: batch.compression, platform: batch.platform, region: env[ENV.AWS_REGION] },
  });
  const repairs = new Copier();
  const results = await copyImages({
    source,
    destination,
    items: batch.items,
    repositoryPrefix: batch.target?.repositoryPrefix,
    dryRun: batch.dryRun,
    // Recorded policies only on the input's explicit opt-in (schema/contract.ts applyPolicies).
    skipPolicies: !batch.applyPolicies,
    // The listing Lambda recorded every planned repository's settings already.
    recordSettings: false,
    onRepositoryNote: (note) => {
      notes.push(note);
      const attention = Boolean(note.problems?.length || note.differences?.length);
      log(attention ? 'warn' : 'info', `repository settings ${note.action}`, { runId, batch: batch.index, ...note });
    },
    // A repair item (verify found the stored image damaged) is copied again in repair mode; then
    // backup: the batch's format, else the stack's (IMAGE_FORMAT); restore: each record's format.
    archive: async (item, targetName) =>
      (batch.mode === 'backup' ? await repairMarked(store, source, item, repairs) : undefined) ?? archive?.(item, targetName),
    onResult: async (result, index) => {
      await store.runs.writeResult(runId, batch.index, index, result);
      log(result.status === 'failed' ? 'error' : 'info', `image ${result.status}`, { runId, batch: batch.index, ...result });
    },
  });
  // One object with the whole batch's results: the summary reads one object per batch (the
  // per-image results above are its fallback for a task that died part-way).
  await store.runs.writeBatchResults(runId, batch.index, results).catch((error: unknown) => {
    log('warn', 'cannot write the batch results', { runId, batch: batch.index, error });
  });
  // The summary Lambda merges every batch's notes into the run report.
  // A lost notes file costs the report its settings notes (they are in this log), not the batch.
  if (notes.length) {
    await store.runs.writeNotes(runId, batch.index, notes).catch((error: unknown) => {
      log('warn', 'cannot write the repository notes', { runId, batch: batch.index, error });
    });
  }
  const failed = results.filter((r) => r.status === 'failed').length;
  log('info', 'batch finished', { runId, batch: batch.index, images: results.length, failed });
}

main().catch((error: unknown) => {
  log('error', 'batch could not run', { error });
  process.exitCode = 1;
});
