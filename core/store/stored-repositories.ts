// Which repositories the store holds, and which of them a backup already found deleted at the source,
// in about one LIST request per 1,000 repositories (not per key): the catalog is listed grouped at
// the first "/_" after `catalog/`, which is exactly the end of a repository's path (repository
// components never start with "_"), so `catalog/<repository>/_` comes back once per repository.
//
//   catalog/_deleted/<repository>.json
//       The repository was gone at the source when a backup ran: its tags then got tombstones, and
//       later runs skip it instead of re-reading its catalog. Removed when the repository is back at
//       the source (its tags are then backed up as usual). It lies outside every repository's folder,
//       so it is not a catalog record, and parseCatalogKey ignores it; in the grouped listing its key
//       comes back on its own.
import { CATALOG_PREFIX } from './layout.ts';
import { listGrouped, writeJson, type ObjectStore } from './object-store.ts';
import { isRepositoryName } from '../../schema/names.ts';

const DELETED_REPOSITORIES_PREFIX = `${CATALOG_PREFIX}_deleted/`;
const GROUP_DELIMITER = '/_';

export const deletedRepositoryKey = (repository: string) => `${DELETED_REPOSITORIES_PREFIX}${repository}.json`;

/** The body of a deleted-repository marker. */
export interface DeletedRepositoryMarker {
  repository: string;
  deletedAt: string;
  /** Tags that got a tombstone when the deletion was recorded. */
  tags: number;
  runId?: string;
}

export interface StoredRepositories {
  /** Repositories with anything under `catalog/<repository>/`, sorted. */
  repositories: string[];
  /** Repositories with a deleted-at-source marker. */
  markedDeleted: Set<string>;
}

export async function storedRepositories(objects: ObjectStore): Promise<StoredRepositories> {
  const repositories: string[] = [];
  const markedDeleted = new Set<string>();
  for await (const entry of listGrouped(objects, CATALOG_PREFIX, GROUP_DELIMITER)) {
    if ('group' in entry) {
      const name = entry.group.slice(CATALOG_PREFIX.length, -GROUP_DELIMITER.length);
      if (isRepositoryName(name)) repositories.push(name);
    } else if (entry.key.startsWith(DELETED_REPOSITORIES_PREFIX) && entry.key.endsWith('.json')) {
      const name = entry.key.slice(DELETED_REPOSITORIES_PREFIX.length, -'.json'.length);
      if (isRepositoryName(name)) markedDeleted.add(name);
    }
  }
  return { repositories: repositories.sort(), markedDeleted };
}

export async function markRepositoryDeleted(objects: ObjectStore, marker: DeletedRepositoryMarker): Promise<void> {
  await writeJson(objects, deletedRepositoryKey(marker.repository), marker, { ifAbsent: true });
}

/** The repository is back at the source: forget that it was deleted (its tombstones stay as history). */
export async function unmarkRepositoryDeleted(objects: ObjectStore, repository: string): Promise<void> {
  await objects.delete(deletedRepositoryKey(repository));
}
