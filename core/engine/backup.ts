// A whole backup into a store, as the CLI runs it: plan from the source, leave out what the store
// already holds and record tags deleted at the source (unchanged.ts), copy the rest, and record
// the settings of repositories that had nothing to copy. The listing Lambda runs the same first
// steps and hands the copying to Fargate batches.
import type { ArchiveFormat, DeletedTag, ImageResult, RepositoryNote, WorkItem } from '../../schema/contract.ts';
import type { ArchiveSettings } from '../archive/settings.ts';
import type { ImageEndpoint, ImageListing } from '../model/endpoint.ts';
import type { BackupStore } from '../store/backup-store.ts';
import type { ProgressEvent } from './copy.ts';
import { planImages, type ImageFilters, type PlanSkip } from './plan.ts';
import { copyImages, recordRepositorySettings, uncopiedResult, type CopyRunOptions } from './run.ts';
import { recordingListings, splitUnchanged } from './unchanged.ts';

export interface BackupRunOptions {
  source: ImageEndpoint;
  store: BackupStore;
  filters?: ImageFilters;
  format?: ArchiveFormat;
  archiveSettings?: ArchiveSettings;
  dryRun?: boolean;
  imageConcurrency?: number;
  blobConcurrency?: number;
  onProgress?: (event: ProgressEvent) => void;
  /** Called once the work is known (the images to copy), before copying starts. */
  onPlanned?: (work: readonly WorkItem[]) => void;
  /** A repository or tag left out of the plan (invalid name), reported as a `skipped` note. */
  onSkip?: (note: PlanSkip) => void;
  archive?: CopyRunOptions['archive'];
}

export interface BackupRunResult {
  /** Images the plan matched (unchanged ones included). */
  planned: number;
  /** Unchanged images first (status `unchanged`), then the copy results. */
  results: ImageResult[];
  deleted: DeletedTag[];
  notes: RepositoryNote[];
}

export async function runBackup(options: BackupRunOptions): Promise<BackupRunResult> {
  const { source, store } = options;
  const seen = new Map<string, ImageListing[]>();
  const planned = await planImages(recordingListings(source, seen), options.filters, 8, options.onSkip);
  const split = await splitUnchanged(source, store, planned, seen, {
    format: options.format ?? 'oci',
    ...(options.archiveSettings ? { settings: options.archiveSettings } : {}),
    recordDeletions: !options.dryRun,
  });
  options.onPlanned?.(split.work);
  const notes: RepositoryNote[] = [];
  const copied = await copyImages({
    source,
    destination: store,
    items: split.work,
    imageConcurrency: options.imageConcurrency,
    blobConcurrency: options.blobConcurrency,
    dryRun: options.dryRun,
    onProgress: options.onProgress,
    onRepositoryNote: (note) => notes.push(note),
    archive: options.archive,
  });
  // copyImages records a repository's settings with its first image; repositories whose images are
  // all unchanged get theirs recorded here (repositories without images are left alone, as before).
  if (!options.dryRun) {
    const withWork = new Set(split.work.map((i) => i.repository));
    for (const repository of [...new Set(planned.map((i) => i.repository))].filter((r) => !withWork.has(r)).sort()) {
      const note = await recordRepositorySettings(source, store, repository);
      if (note) notes.push(note);
    }
  }
  return {
    planned: planned.length,
    results: [...split.unchanged.map((item) => uncopiedResult(item, 'unchanged')), ...copied],
    deleted: split.deleted,
    notes: notes.sort((a, b) => (a.repository < b.repository ? -1 : a.repository > b.repository ? 1 : 0)),
  };
}
