// Copies a list of work items between two endpoints with bounded parallelism across images. Used
// for both directions: backup (source = registry, destination = store) and restore (the reverse,
// with an optional repository prefix on the destination side).
import { errorText } from '../redact.ts';
import type { ImageResult, RepositoryNote, WorkItem } from '../../schema/contract.ts';
import { isRepositoryName } from '../../schema/names.ts';
import type { ImageEndpoint } from '../model/endpoint.ts';
import type { RepositorySettings } from '../../schema/repository-settings.ts';
import { Copier, type ProgressEvent } from './copy.ts';
import { mapLimited } from '../limiter.ts';

export interface CopyRunOptions {
  source: ImageEndpoint;
  destination: ImageEndpoint;
  items: readonly WorkItem[];
  /** Prepended to each repository name on the destination (restore into `dr/` and the like). */
  repositoryPrefix?: string;
  imageConcurrency?: number;
  blobConcurrency?: number;
  dryRun?: boolean;
  /** Restore: create missing repositories without their recorded lifecycle and repository policies. */
  skipPolicies?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  /**
   * Backup into a store: record each repository's settings with its first image (default true). The
   * workflow's listing Lambda records them for every planned repository, so its workers pass false.
   */
  recordSettings?: boolean;
  /** Called once per repository whose settings were recorded (backup into a store) or applied/compared (restore). */
  onRepositoryNote?: (note: RepositoryNote) => void;
  /** Called as each image finishes, with its position in `items`. */
  onResult?: (result: ImageResult, index: number) => Promise<void> | void;
  /**
   * Per-item format dispatch (core/archive `archiveHandler`): takes over an item that is to be
   * stored (backup) or is stored (restore) as a docker-archive tar and returns its result, or
   * returns undefined to leave the item to the copy engine. Runs after the repository is prepared.
   */
  archive?: (item: WorkItem, targetRepository: string) => Promise<ImageResult | undefined>;
}

export function targetRepositoryName(repository: string, prefix = ''): string {
  const name = prefix + repository;
  if (!isRepositoryName(name))
    throw new Error(`repository prefix ${JSON.stringify(prefix)} makes an invalid repository name ${JSON.stringify(name)}`);
  return name;
}

/** The result for an item nothing was copied for: planned in a dry run, or failed before copying. */
export function uncopiedResult(
  item: WorkItem,
  status: ImageResult['status'],
  extra: { targetRepository?: string; error?: string } = {},
): ImageResult {
  return {
    repository: item.repository,
    ...(extra.targetRepository && extra.targetRepository !== item.repository ? { targetRepository: extra.targetRepository } : {}),
    ...(item.tag !== undefined ? { tag: item.tag } : {}),
    ...(item.digest !== undefined ? { digest: item.digest } : {}),
    status,
    blobsCopied: 0,
    bytesCopied: 0,
    bytesDeduplicated: 0,
    durationMs: 0,
    ...(extra.error !== undefined ? { error: extra.error } : {}),
  };
}

export async function copyImages(options: CopyRunOptions): Promise<ImageResult[]> {
  const { source, destination, items } = options;
  const copier = new Copier({ blobConcurrency: options.blobConcurrency, onProgress: options.onProgress });
  // Each destination repository is prepared once, however many of its images are in the run.
  const prepared = new Map<string, Promise<void>>();
  const prepare = (sourceName: string, targetName: string) => {
    let ready = prepared.get(targetName);
    if (!ready) {
      ready = prepareRepository(sourceName, targetName);
      prepared.set(targetName, ready);
    }
    return ready;
  };
  // Repository settings travel with the first image of each repository: a backup records the
  // source's settings in the store; a restore creates the target with the recorded ones (or compares
  // them with an existing target). Settings never fail an image; only a failed creation does.
  async function prepareRepository(sourceName: string, targetName: string): Promise<void> {
    if (options.recordSettings !== false) {
      const recorded = await recordRepositorySettings(source, destination, sourceName, targetName);
      if (recorded) options.onRepositoryNote?.(recorded);
    }
    if (destination.ensureRepository) {
      const problems: string[] = [];
      let settings: RepositorySettings | undefined;
      if (source.repositorySettings) {
        try {
          settings = await source.repositorySettings(sourceName);
        } catch (error) {
          problems.push(`cannot read repository settings: ${errorText(error)}`);
        }
      }
      const outcome = await destination.ensureRepository(targetName, settings, { skipPolicies: options.skipPolicies });
      if (outcome) options.onRepositoryNote?.(repositoryNote(sourceName, targetName, outcome, problems));
    }
  }
  return mapLimited(items, options.imageConcurrency ?? 4, async (item, index) => {
    const copied = await copyItem(item);
    const result = item.previousDigest !== undefined ? { ...copied, previousDigest: item.previousDigest } : copied;
    await options.onResult?.(result, index);
    return result;
  });

  async function copyItem(item: WorkItem): Promise<ImageResult> {
    const sourceRepository = source.repository(item.repository);
    const targetName = targetRepositoryName(item.repository, options.repositoryPrefix);
    const destinationRepository = destination.repository(targetName);
    const ref = item.tag !== undefined ? { tag: item.tag } : { digest: item.digest! };
    if (options.dryRun) return uncopiedResult(item, 'planned', { targetRepository: targetName });
    try {
      await prepare(item.repository, targetName);
    } catch (error) {
      const cause = errorText(error);
      return uncopiedResult(item, 'failed', { targetRepository: targetName, error: `${targetName}: cannot create repository: ${cause}` });
    }
    const archived = await options.archive?.(item, targetName);
    if (archived) return archived;
    return copier.copyImage(sourceRepository, destinationRepository, ref);
  }
}

/**
 * Backup: reads a repository's settings from the source and records them in the destination (a
 * store) when they changed. The one path for both the copy engine (per repository, with its first
 * image) and the workflow's listing Lambda (every planned repository). Never throws: a failure is an
 * `unrecorded` note with the problem. Undefined when the source or destination has no settings.
 */
export async function recordRepositorySettings(
  source: ImageEndpoint,
  destination: ImageEndpoint,
  sourceName: string,
  targetName = sourceName,
): Promise<RepositoryNote | undefined> {
  if (!destination.recordRepositorySettings || !source.repositorySettings) return undefined;
  const problems: string[] = [];
  let recorded: boolean | undefined;
  let settings: RepositorySettings | undefined;
  try {
    settings = await source.repositorySettings(sourceName);
  } catch (error) {
    problems.push(`cannot read repository settings: ${errorText(error)}`);
  }
  if (settings) {
    try {
      recorded = await destination.recordRepositorySettings(targetName, settings);
    } catch (error) {
      problems.push(`cannot record repository settings: ${errorText(error)}`);
    }
  }
  if (recorded !== undefined) return repositoryNote(sourceName, targetName, { action: recorded ? 'recorded' : 'unchanged' }, problems);
  if (problems.length) return repositoryNote(sourceName, targetName, { action: 'unrecorded' }, problems);
  return undefined;
}

function repositoryNote(
  sourceName: string,
  targetName: string,
  fields: Omit<RepositoryNote, 'repository' | 'targetRepository'>,
  problems: readonly string[],
): RepositoryNote {
  const all = [...problems, ...(fields.problems ?? [])];
  return {
    repository: sourceName,
    ...(targetName !== sourceName ? { targetRepository: targetName } : {}),
    ...fields,
    ...(all.length ? { problems: all } : {}),
  };
}
