// Repository settings on a cadence, for the workflow's sharded listing. What DescribeRepositories
// reports (tag mutability, scan on push, encryption) arrives with the repository list at no extra
// call; lifecycle and repository policies and resource tags cost three calls per repository, so they
// are read only when the repository's settings were never read in full, when the last full read is
// older than the cadence (default a week), or when the described part changed since it. A full read
// records the settings when they changed (BackupStore.recordRepositorySettings) and leaves a marker
// `catalog/<repository>/_settings/checked_<time>_<hash>.json` (layout.ts): <time> is the read's,
// <hash> fingerprints the described part. Catalog keys are written once (the roles deny overwrites),
// so there is one marker per full read (weekly: ~52 small keys a year per repository); the catalog
// LIST the listing does anyway answers "is a full read due?" with no extra request.
import type { RepositoryNote } from '../../schema/contract.ts';
import type { ShardRepository } from '../../schema/listing-shards.ts';
import type { RepositorySettings } from '../../schema/repository-settings.ts';
import { errorText } from '../redact.ts';
import type { EcrClientLike } from '../registry/ecr.ts';
import { readPolicySettings, readRepositorySettings } from '../registry/repository-settings.ts';
import type { BackupStore } from '../store/backup-store.ts';
import type { CatalogIndex } from '../store/catalog-index.ts';
import { settingsHash } from '../store/layout.ts';

export interface CadenceOptions {
  client: EcrClientLike;
  registryId?: string;
  store: BackupStore;
  /** A full read is due when the last one is at least this old (0: every run). */
  cadenceMs: number;
  now?: Date;
}

/** True when policies and tags must be read again (see the file comment). */
function fullReadDue(repository: ShardRepository, index: CatalogIndex, cadenceMs: number, now: Date): boolean {
  if (!repository.described || !repository.arn || index.settings.length === 0) return true;
  const last = index.settingsChecked.reduce<CatalogIndex['settingsChecked'][number] | undefined>(
    (latest, check) => (!latest || check.at > latest.at ? check : latest),
    undefined,
  );
  return !last || last.describedHash !== settingsHash(repository.described) || now.getTime() - last.at.getTime() >= cadenceMs;
}

/**
 * Records one repository's settings if a full read is due, else reports them `unchanged` with no
 * call at all (a full read is 3 ECR calls, 4 without DescribeRepositories' part). Never throws: a
 * failed read or write is an `unrecorded` note.
 */
export async function recordSettingsOnCadence(
  repository: ShardRepository,
  index: CatalogIndex,
  options: CadenceOptions,
): Promise<RepositoryNote> {
  const name = repository.name;
  if (!fullReadDue(repository, index, options.cadenceMs, options.now ?? options.store.now())) {
    return { repository: name, action: 'unchanged' };
  }
  const { described, arn } = repository;
  try {
    let settings: RepositorySettings;
    if (described && arn) {
      settings = { ...described, ...(await readPolicySettings(options.client, name, arn, options.registryId)) };
    } else {
      settings = await readRepositorySettings(options.client, name, options.registryId);
    }
    const recorded = await options.store.recordRepositorySettings(name, settings);
    const now = options.now ?? options.store.now();
    if (described)
      await options.store.recordSettingsChecked(name, now, settingsHash(described), {
        repository: name,
        checkedAt: now.toISOString(),
        settingsHash: settingsHash(settings),
        ...(options.store.runId ? { runId: options.store.runId } : {}),
      });
    return { repository: name, action: recorded ? 'recorded' : 'unchanged' };
  } catch (error) {
    return { repository: name, action: 'unrecorded', problems: [`cannot record repository settings: ${errorText(error)}`] };
  }
}
