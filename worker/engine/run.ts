// Copies a list of work items between two endpoints with bounded parallelism across images. Used
// for both directions: backup (source = registry, destination = store) and restore (the reverse,
// with an optional repository prefix on the destination side).
import type { ImageResult, WorkItem } from '../../schema/contract.ts';
import { isRepositoryName } from '../../schema/names.ts';
import type { ImageEndpoint } from '../model/endpoint.ts';
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
  onProgress?: (event: ProgressEvent) => void;
  /** Called as each image finishes, with its position in `items`. */
  onResult?: (result: ImageResult, index: number) => Promise<void> | void;
}

export function targetRepositoryName(repository: string, prefix = ''): string {
  const name = prefix + repository;
  if (!isRepositoryName(name)) throw new Error(`repository prefix ${JSON.stringify(prefix)} makes an invalid repository name ${JSON.stringify(name)}`);
  return name;
}

/** The result for an item nothing was copied for: planned in a dry run, or failed before copying. */
export function uncopiedResult(item: WorkItem, status: ImageResult['status'], extra: { targetRepository?: string; error?: string } = {}): ImageResult {
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
  const prepare = (name: string) => {
    let ready = prepared.get(name);
    if (!ready) {
      ready = destination.ensureRepository?.(name) ?? Promise.resolve();
      prepared.set(name, ready);
    }
    return ready;
  };
  return mapLimited(items, options.imageConcurrency ?? 4, async (item, index) => {
    const result = await copyItem(item);
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
      await prepare(targetName);
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error);
      return uncopiedResult(item, 'failed', { targetRepository: targetName, error: `${targetName}: cannot create repository: ${cause}` });
    }
    return copier.copyImage(sourceRepository, destinationRepository, ref);
  }
}
