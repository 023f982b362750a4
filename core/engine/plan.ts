// Turns filters into work items by listing a source endpoint: a registry or ECR for a backup, the
// backup store's catalog for a restore. The same function serves the CLI and the listing Lambda.
import type { RepositoryNote, WorkItem } from '../../schema/contract.ts';
import { matchesFilters } from '../../schema/glob.ts';
import { isRepositoryName, isTag } from '../../schema/names.ts';
import type { ImageEndpoint, ImageListing } from '../model/endpoint.ts';
import { mapLimited } from '../limiter.ts';

export interface ImageFilters {
  repositories?: readonly string[];
  tags?: readonly string[];
  excludeTags?: readonly string[];
  includeUntagged?: boolean;
  /** Globs every planned repository must also match: what a deployment protects (and may read). */
  within?: readonly string[];
  /** Only these exact images (a push-started run); their repositories must exist. */
  images?: readonly { repository: string; tag: string }[];
}

export class UnknownRepositoryError extends Error {
  override name = 'UnknownRepositoryError';
}

const hasGlob = (pattern: string) => /[*?]/.test(pattern);

/** A repository or tag the plan left out, as a `skipped` repository note (problems say why). */
export type PlanSkip = RepositoryNote & { action: 'skipped' };

/** The note for something left out of a run: reported, never fatal to the rest. */
export const skipNote = (repository: string, problem: string): PlanSkip => ({ repository, action: 'skipped', problems: [problem] });

/**
 * Lists the images that match `filters`. A repository filter without wildcards names a repository
 * that must exist: a typo fails loudly instead of producing an empty, successful-looking run.
 * A listed repository or tag that is not valid OCI grammar (a hostile `_catalog`, an ECR name the
 * spec does not allow) affects only itself: it is left out and passed to `onSkip`.
 */
export async function planImages(
  source: ImageEndpoint,
  filters: ImageFilters = {},
  concurrency = 8,
  onSkip: (note: PlanSkip) => void = () => undefined,
): Promise<WorkItem[]> {
  if (filters.images) {
    const wanted = new Set(filters.images.map((i) => `${i.repository}:${i.tag}`));
    const named = {
      ...filters,
      images: undefined,
      repositories: [...new Set(filters.images.map((i) => i.repository))].filter((r) => matchesFilters(r, filters.repositories)),
    };
    if (named.repositories.length === 0) return [];
    return (await planImages(source, named, concurrency, onSkip)).filter(
      (item) => item.tag !== undefined && wanted.has(`${item.repository}:${item.tag}`),
    );
  }
  const repositories = selectRepositories(await source.listRepositories(), filters, source.description, onSkip);
  const perRepository = await mapLimited(repositories, concurrency, async (repository) =>
    repositoryItems(repository, await source.repository(repository).listImages(), filters, onSkip),
  );
  return perRepository.flat();
}

/**
 * The listed repositories `filters` select, sorted (without `images`: planImages narrows those).
 * Invalid names are passed to `onSkip`; a repository filter without wildcards must name one that
 * exists and lies within `filters.within` (UnknownRepositoryError otherwise).
 */
export function selectRepositories(
  listed: readonly unknown[],
  filters: ImageFilters,
  description: string,
  onSkip: (note: PlanSkip) => void = () => undefined,
): string[] {
  const all: string[] = [];
  for (const name of listed) {
    if (typeof name === 'string' && isRepositoryName(name)) all.push(name);
    // Reported only when the run would have included it (a filtered run ignores the rest).
    else if (typeof name === 'string' && matchesFilters(name, filters.repositories) && matchesFilters(name, filters.within))
      onSkip(skipNote(printable(name), 'not a valid repository name (OCI grammar, at most 256 characters): left out of the run'));
  }
  const present = new Set(all);
  const missing = (filters.repositories ?? []).filter((r) => !hasGlob(r) && !present.has(r));
  if (missing.length > 0) {
    const invalid = missing.filter((r) => !isRepositoryName(r));
    throw new UnknownRepositoryError(
      invalid.length > 0
        ? `invalid repository name ${invalid.map((r) => JSON.stringify(r)).join(', ')}`
        : `unknown repository ${missing.join(', ')} in ${description}`,
    );
  }
  const outside = (filters.repositories ?? []).filter((r) => !hasGlob(r) && !matchesFilters(r, filters.within));
  if (outside.length > 0) {
    throw new UnknownRepositoryError(
      `repository ${outside.join(', ')} is not among the protected repositories (${filters.within!.join(', ')})`,
    );
  }
  return all.filter((r) => matchesFilters(r, filters.repositories) && matchesFilters(r, filters.within)).sort();
}

/** One repository's listing as work items: tag filters applied, invalid tags passed to `onSkip`, sorted. */
export function repositoryItems(
  repository: string,
  images: readonly ImageListing[],
  filters: ImageFilters,
  onSkip: (note: PlanSkip) => void = () => undefined,
): WorkItem[] {
  const items: WorkItem[] = [];
  for (const image of images) {
    const size = image.sizeBytes !== undefined ? { sizeBytes: image.sizeBytes } : {};
    if (image.tag !== undefined) {
      if (!isTag(image.tag)) onSkip(skipNote(repository, `tag ${printable(image.tag)} is not a valid tag: left out of the run`));
      else if (matchesFilters(image.tag, filters.tags, filters.excludeTags)) items.push({ repository, tag: image.tag, ...size });
    } else if (image.digest !== undefined && filters.includeUntagged) {
      items.push({ repository, digest: image.digest, ...size });
    }
  }
  return items.sort((a, b) => (a.tag ?? a.digest ?? '').localeCompare(b.tag ?? b.digest ?? ''));
}

/** Skip notes for the catalog records a store's readers left out (core/store/record.ts). */
export function rejectedRecordNotes(rejected: readonly { repository: string; reason: string }[]): PlanSkip[] {
  return rejected.map((r) => skipNote(r.repository, r.reason));
}

/** A name from a hostile listing, quoted and cut short enough to print. */
function printable(name: string): string {
  const text = JSON.stringify(name);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
