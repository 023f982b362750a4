// The workflow's backup listing, sharded by repository so that no single invocation grows with the
// organisation (state-machine/definition.ts wires the steps; lambdas/list-shards.ts calls them):
//
//   plan    DescribeRepositories (1 request per 1,000 repositories, and it already carries the settings
//           ECR reports), the run's filters, and one grouped LIST of the store's catalog (about 1
//           request per 1,000 stored repositories) for repositories deleted at the source; writes the
//           shards (runs/<run>/listing/shards/<n>.json, ≤ shardSize repositories each) and their list.
//   shard   per repository: DescribeImages (1 request per 1,000 images), one catalog LIST (the
//           unchanged split, tombstones and the settings cadence all read it), settings on the cadence
//           (settings-cadence.ts); per deleted repository: tombstones for its current tags, once, and
//           a marker so later runs skip it. Writes runs/<run>/listing/outcomes/<n>.json.
//   merge   reads the outcomes (one GET per shard) and writes the batches Copy batches reads, the
//           deleted tags and the repository notes for the report.
import type { ExecutionInput, DeletedTag, RepositoryNote, WorkItem } from '../../schema/contract.ts';
import type { ListingShard, ShardOutcome, ShardRef, ShardRepository } from '../../schema/listing-shards.ts';
import { matchesFilters } from '../../schema/glob.ts';
import type { ArchiveFormat } from '../../schema/contract.ts';
import type { ArchiveSettings } from '../archive/settings.ts';
import { mapLimited } from '../limiter.ts';
import type { EcrEndpoint } from '../registry/ecr.ts';
import { isThrottling } from '../registry/ecr-throttle.ts';
import { RegistryError, RegistryNotFoundError } from '../registry/errors.ts';
import type { ImageListing } from '../model/endpoint.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { type CatalogIndex, currentRecord } from '../store/catalog-index.ts';
import { errorText } from '../redact.ts';
import { type PlanSkip, repositoryItems, selectRepositories, skipNote } from './plan.ts';
import { recordSettingsOnCadence } from './settings-cadence.ts';
import { splitUnchanged } from './unchanged.ts';
import { openDamageMarks, withRepairs } from './damage-marks.ts';

export interface PlanOptions {
  source: Pick<EcrEndpoint, 'describeRepositories' | 'description'>;
  store: BackupStore;
  runId: string;
  input: ExecutionInput;
  /** The protected repository globs. */
  within: readonly string[];
  shardSize: number;
}

export interface Plan {
  refs: ShardRef[];
  repositoryCount: number;
  goneCount: number;
}

/** The plan step: writes the shards and runs/<run>/listing/shards.json (see the file comment). */
export async function planShards(options: PlanOptions): Promise<Plan> {
  const { store, runId, input } = options;
  const described = await options.source.describeRepositories();
  const byName = new Map(described.map((r) => [r.name, r]));
  const notes: PlanSkip[] = [];
  const filters = { repositories: input.repositories, within: options.within };
  // A push-started run names its images: their repositories only (each must exist), no deletion check.
  const named = input.images
    ? { ...filters, repositories: [...new Set(input.images.map((i) => i.repository))].filter((r) => matchesFilters(r, input.repositories)) }
    : filters;
  const selected =
    named.repositories?.length === 0
      ? []
      : selectRepositories(
          described.map((r) => r.name),
          named,
          options.source.description,
          (note) => notes.push(note),
        );
  let gone: string[] = [];
  if (!input.images && !input.dryRun) {
    const stored = await store.storedRepositories();
    const inScope = (name: string) => matchesFilters(name, filters.repositories) && matchesFilters(name, filters.within);
    gone = stored.repositories.filter((name) => !byName.has(name) && inScope(name) && !stored.markedDeleted.has(name));
    // Back at the source: its tags are listed as usual again, and a later deletion is recorded anew.
    const back = [...stored.markedDeleted].filter((name) => byName.has(name) && inScope(name));
    await mapLimited(back, 16, (name) => store.unmarkRepositoryDeleted(name));
  }
  const entries: Array<{ repository: ShardRepository } | { gone: string }> = [
    ...selected.map((name) => ({ repository: byName.get(name)! })),
    ...gone.map((name) => ({ gone: name })),
  ];
  const shards: ListingShard[] = [];
  for (let start = 0; start < entries.length; start += options.shardSize) {
    const part = entries.slice(start, start + options.shardSize);
    shards.push({
      runId,
      index: shards.length,
      input,
      repositories: part.flatMap((e) => ('repository' in e ? [e.repository] : [])),
      gone: part.flatMap((e) => ('gone' in e ? [e.gone] : [])),
    });
  }
  const refs = await mapLimited(shards, 16, async (shard): Promise<ShardRef> => {
    const shardKey = await store.runs.writeShard(shard);
    return { shardKey, index: shard.index, repositories: shard.repositories.length + shard.gone.length };
  });
  await store.runs.writeShardList(runId, refs);
  // The run's notes from the plan step (invalid repository names), next to the listing's own.
  if (notes.length) await store.runs.writeNotes(runId, 'plan', notes);
  return { refs, repositoryCount: selected.length, goneCount: gone.length };
}

export interface ShardOptions {
  source: EcrEndpoint;
  store: BackupStore;
  shard: ListingShard;
  format: ArchiveFormat;
  archive?: ArchiveSettings;
  /** Recorded settings older than this are read again in full. */
  settingsCadenceMs: number;
  /** ECR calls made so far by `source` (for the outcome's count). */
  ecrCalls?: () => number;
}

/** The shard step: lists one shard and writes its outcome (see the file comment). */
export async function listShard(options: ShardOptions): Promise<ShardOutcome> {
  const { source, store, shard } = options;
  const { input } = shard;
  const notes: RepositoryNote[] = [];
  const filters = { tags: input.tags, excludeTags: input.excludeTags, includeUntagged: input.includeUntagged };
  const wanted = input.images && new Set(input.images.map((i) => `${i.repository}:${i.tag}`));
  const listings = new Map<string, ImageListing[]>();
  const items: WorkItem[] = [];
  const listed = await mapLimited(shard.repositories, 8, async (repository) => {
    try {
      const images = await source.repository(repository.name).listImages();
      listings.set(repository.name, images);
      return repositoryItems(repository.name, images, filters, (note) => notes.push(note));
    } catch (error) {
      if (!isRepositoryProblem(error)) throw error;
      notes.push(skipNote(repository.name, `not listed this run: ${errorText(error)}`));
      return [];
    }
  });
  for (const repositoryItemsOfOne of listed)
    items.push(...repositoryItemsOfOne.filter((i) => !wanted || (i.tag !== undefined && wanted.has(`${i.repository}:${i.tag}`))));

  // One catalog LIST per repository, shared by the unchanged split, the deletions and the settings.
  const indexes = new Map<string, Promise<CatalogIndex>>();
  const readIndex = (name: string) => {
    const cached = indexes.get(name);
    if (cached) return cached;
    const index = store.catalogIndex(name);
    indexes.set(name, index);
    return index;
  };
  const split = await splitUnchanged(source, store, items, listings, {
    format: options.format,
    ...(options.archive ? { settings: options.archive } : {}),
    recordDeletions: !input.dryRun,
    readIndex,
  });
  // Images verify found damaged are copied again (repair mode) although their manifest is stored.
  // Only this shard's marks are read: every shard LISTs the marks, but GETs only its own.
  const { work, unchanged } = withRepairs(split, await openDamageMarks(store, (repository) => listings.has(repository)));
  const deleted: DeletedTag[] = [...split.deleted];
  let settingsRecorded = 0;
  if (!input.dryRun) {
    const settingsNotes = await mapLimited(
      shard.repositories.filter((r) => listings.has(r.name)),
      8,
      async (repository) =>
        recordSettingsOnCadence(repository, await readIndex(repository.name), {
          client: source.client,
          ...(source.registryId ? { registryId: source.registryId } : {}),
          store,
          cadenceMs: options.settingsCadenceMs,
        }),
    );
    notes.push(...settingsNotes);
    settingsRecorded = settingsNotes.filter((n) => n.action === 'recorded').length;
    for (const name of shard.gone) {
      deleted.push(...(await recordRepositoryDeleted(store, name, await readIndex(name))));
      notes.push({ repository: name, action: 'deleted' });
    }
  }
  const outcome: ShardOutcome = {
    index: shard.index,
    items: work,
    unchangedCount: unchanged.length,
    deleted,
    notes,
    settingsRecorded,
    ecrCalls: options.ecrCalls?.() ?? 0,
  };
  await store.runs.writeShardOutcome(shard.runId, outcome);
  return outcome;
}

/** Tombstones for the repository's current tags (its other history stays), then the marker that ends its listing. */
async function recordRepositoryDeleted(store: BackupStore, repository: string, index: CatalogIndex): Promise<DeletedTag[]> {
  const current = [...index.tags].filter(([, entries]) => currentRecord(entries) !== undefined).map(([tag]) => tag);
  const deleted = current.length ? await store.repository(repository).recordDeletions(current.sort()) : [];
  await store.markRepositoryDeleted({
    repository,
    deletedAt: store.now().toISOString(),
    tags: deleted.length,
    ...(store.runId ? { runId: store.runId } : {}),
  });
  return deleted;
}

/** A repository that vanished after the plan, or stayed throttled past every retry: left out and reported, not fatal. */
function isRepositoryProblem(error: unknown): boolean {
  return error instanceof RegistryNotFoundError || (error instanceof RegistryError && isThrottling(error.cause));
}

export interface Merged {
  items: WorkItem[];
  unchangedCount: number;
  deleted: DeletedTag[];
  notes: RepositoryNote[];
  settingsRecorded: number;
  ecrCalls: number;
}

/** The merge step's reading half: every shard's outcome (one GET each), in shard order. A missing outcome fails the run. */
export async function readShardOutcomes(store: BackupStore, runId: string, refs: readonly ShardRef[]): Promise<Merged> {
  const outcomes = await mapLimited(refs, 16, async (ref) => {
    try {
      return await store.runs.readShardOutcome(runId, ref.index);
    } catch (error) {
      throw new Error(`listing shard ${ref.index} (${ref.repositories} repositories) left no usable outcome: ${errorText(error)}`);
    }
  });
  return {
    items: outcomes.flatMap((o) => o.items),
    unchangedCount: outcomes.reduce((n, o) => n + o.unchangedCount, 0),
    deleted: outcomes.flatMap((o) => o.deleted),
    notes: outcomes.flatMap((o) => o.notes),
    settingsRecorded: outcomes.reduce((n, o) => n + o.settingsRecorded, 0),
    ecrCalls: outcomes.reduce((n, o) => n + o.ecrCalls, 0),
  };
}
