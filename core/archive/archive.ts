// The docker-archive format's dispatch for the copy engine: which work items are archived on backup
// (backup.ts) or restored from an archive (restore.ts); the format itself is described in those files.
import type { ArchiveFormat, ImageResult, WorkItem } from '../../schema/contract.ts';
import type { ImageEndpoint, ImageListing } from '../model/endpoint.ts';
import type { ProgressEvent } from '../engine/copy.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { recordFormat, type CatalogRecord } from '../store/layout.ts';
import { resolveArchiveSettings, type ArchiveSettings } from './settings.ts';
import { backupArchive } from './backup.ts';
import { restoreArchive } from './restore.ts';

export * from './settings.ts';

export interface ArchiveHandlerOptions {
  mode: 'backup' | 'restore';
  /** The backup store: the destination of a backup, the source of a restore (at its asOf). */
  store: BackupStore;
  /** The other end: the registry a backup reads from or a restore writes to. */
  registry: ImageEndpoint;
  /** Backup: the format to write; 'oci' (the default) leaves everything to the copy engine. */
  format?: ArchiveFormat;
  /** Backup settings, defaults applied by resolveArchiveSettings (label: `region`, else local); restore uses only `tmpRoot`. */
  settings?: Partial<ArchiveSettings> & { region?: string };
  onProgress?: (event: ProgressEvent) => void;
}

export type ArchiveHandler = (item: WorkItem, targetRepository: string) => Promise<ImageResult | undefined>;

/**
 * The per-item format dispatch the copy engine calls (CopyRunOptions.archive), for the CLI and the
 * worker alike. Backup in docker-archive format: every item is archived here. Restore: an item whose
 * catalog record is a docker-archive is restored here; any other is left to the copy engine.
 * Undefined when no item can need it (an oci backup).
 */
export function archiveHandler(options: ArchiveHandlerOptions): ArchiveHandler | undefined {
  if (options.mode === 'backup') {
    if ((options.format ?? 'oci') === 'oci') return undefined;
    const settings = resolveArchiveSettings(options.settings ?? {});
    return (item) => backupArchive({ source: options.registry, store: options.store, item, settings, onProgress: options.onProgress });
  }
  const store = options.store;
  // One catalog listing per repository tells which tags are archives (records are cached by the store).
  const listings = new Map<string, Promise<ImageListing[]>>();
  const archived = async (item: WorkItem) => {
    let listing = listings.get(item.repository);
    if (!listing) {
      listing = store.repository(item.repository).listImages();
      listings.set(item.repository, listing);
      listing.catch(() => listings.delete(item.repository));
    }
    return (await listing).some((l) => l.tag === item.tag && l.format === 'docker-archive');
  };
  return async (item, targetRepository) => {
    let record: CatalogRecord;
    try {
      if (item.tag === undefined || !(await archived(item))) return undefined;
      [record] = (await store.describe([item])) as [CatalogRecord];
    } catch {
      return undefined; // a catalog that cannot be read: the copy engine reports the failure for this image
    }
    if (recordFormat(record) !== 'docker-archive') return undefined;
    return restoreArchive({
      store,
      destination: options.registry,
      item,
      record,
      targetRepository,
      tmpRoot: options.settings?.tmpRoot,
      onProgress: options.onProgress,
    });
  };
}
