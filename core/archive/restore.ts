// Restoring an image from a docker-archive in the store into a registry, with skopeo.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageResult, WorkItem } from '../../schema/contract.ts';
import type { ImageEndpoint } from '../model/endpoint.ts';
import type { ProgressEvent } from '../engine/copy.ts';
import type { BackupStore } from '../store/backup-store.ts';
import type { CatalogRecord } from '../store/layout.ts';
import { ArchiveError } from './settings.ts';
import { skopeoCopy, skopeoRegistry, toolError, Workspace } from './skopeo.ts';
import { unpackArchive } from './unpack.ts';
import { copiedResult, failedResult } from './result.ts';

// ---- restore --------------------------------------------------------------------------------------

/**
 * The tar is read back, checked against the recorded sha256 and size, decompressed into a
 * private temp file (skopeo cannot read a docker-archive from a pipe), and pushed with
 * `skopeo copy docker-archive:FILE docker://...`. The pushed manifest always has a NEW digest
 * (skopeo recompresses the layers); only the config digest, the image ID, survives, and it is
 * checked against the record. The temp directory is removed in every case.
 */
export async function restoreArchive(context: {
  store: BackupStore;
  destination: ImageEndpoint;
  item: WorkItem;
  record: CatalogRecord;
  targetRepository: string;
  tmpRoot?: string;
  onProgress?: (event: ProgressEvent) => void;
}): Promise<ImageResult> {
  const { store, destination, item, record, targetRepository, onProgress } = context;
  const started = performance.now();
  const base = {
    repository: item.repository,
    targetRepository,
    ...(item.tag !== undefined ? { tag: item.tag } : {}),
    digest: record.digest,
  };
  onProgress?.({ type: 'image-start', repository: item.repository, reference: item.tag ?? record.digest });
  let result: ImageResult;
  let workspace: Workspace | undefined;
  try {
    const archive = record.archive;
    if (!archive || item.tag === undefined) throw new ArchiveError('the catalog record names no archive');
    const latest = await store.repository(item.repository).latestRecord(item.tag);
    const newer = latest?.record.archive;
    if (newer && newer.key === archive.key && newer.sha256 !== archive.sha256) {
      throw new ArchiveError(
        `${archive.key} was replaced by the backup of ${latest.record.backedUpAt}: docker-archive keeps only each tag's latest tar (the oci format keeps history)`,
      );
    }
    workspace = await Workspace.create(context.tmpRoot);
    // The recorded sha256 and size are checked on the stored bytes before anything decompresses them.
    const file = await unpackArchive(store, archive, workspace.dir, { onBytes: (count) => onProgress?.({ type: 'bytes', count }) });
    const registry = await skopeoRegistry(destination);
    const digestFile = join(workspace.dir, 'digest');
    try {
      await skopeoCopy(workspace, [
        ...(await workspace.registryOptions('dest', registry)),
        '--digestfile',
        digestFile,
        `docker-archive:${file}`,
        `docker://${registry.host}/${targetRepository}:${item.tag}`,
      ]);
    } catch (error) {
      throw toolError(error, 'skopeo copy from docker-archive');
    }
    const restoredDigest = (await readFile(digestFile, 'utf8')).trim();
    // The image ID is what this format promises to keep: check it on what the registry now serves.
    const pushed = await destination.repository(targetRepository).getManifest({ digest: restoredDigest });
    const configDigest = (JSON.parse(pushed.bytes.toString('utf8')) as { config?: { digest?: string } }).config?.digest;
    if (configDigest !== archive.configDigest) {
      throw new ArchiveError(`restored image has config ${configDigest ?? '(none)'}, but the backup recorded ${archive.configDigest}`);
    }
    result = copiedResult(base, started, {
      key: archive.key,
      sha256: archive.sha256,
      size: archive.size,
      compression: archive.compression,
      platform: archive.platform,
      restoredDigest,
    });
  } catch (error) {
    result = failedResult(base, started, item.tag ?? record.digest, error);
  } finally {
    await workspace?.dispose();
  }
  onProgress?.({ type: 'image-done', result });
  return result;
}
