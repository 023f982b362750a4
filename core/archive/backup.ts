// Backing up an image as a docker-archive: one `docker load`-able tar per tag in the store, at
// `<label>/<repository>/<tag>.tar[.gz|.zst]`, made by skopeo, and its catalog record.
import type { ImageResult, WorkItem } from '../../schema/contract.ts';
import type { ImageEndpoint } from '../model/endpoint.ts';
import type { ProgressEvent } from '../engine/copy.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { isArchiveRecord } from '../store/layout.ts';
import { ArchiveError, archiveKey, type ArchiveSettings } from './settings.ts';
import { skopeoRegistry } from './skopeo.ts';
import { choosePlatform } from './platform.ts';
import { copiedResult, failedResult, resultBase } from './result.ts';
import { writeArchive } from './write.ts';

/**
 * The source manifest is resolved with our own registry client (its digest is what the
 * catalog records; for a multi-arch source, one platform's child is chosen), then
 * `skopeo copy docker://<host>/<repo>@<digest> docker-archive:/dev/stdout:<host>/<repo>:<tag>`
 * streams the tar through optional compression and a sha256/size counter straight into the store
 * (an S3 multipart upload or an atomic file write; no temp file of ours). skopeo's stdout stream
 * errors instead of ending when skopeo fails, so a partial tar is never committed. The catalog
 * record is written after the tar: { digest: the SOURCE manifest digest, format: 'docker-archive',
 * archive: { key, sha256, size, compression, platform, configDigest } }.
 */
export async function backupArchive(context: {
  source: ImageEndpoint;
  store: BackupStore;
  item: WorkItem;
  settings: ArchiveSettings;
  onProgress?: (event: ProgressEvent) => void;
}): Promise<ImageResult> {
  const { source, store, item, settings, onProgress } = context;
  const started = performance.now();
  onProgress?.({ type: 'image-start', repository: item.repository, reference: item.tag ?? item.digest ?? '' });
  let digest: string | undefined;
  let result: ImageResult;
  try {
    if (item.tag === undefined) {
      throw new ArchiveError(
        'untagged images are not archived as docker-archive (a restored archive gets a new manifest digest, so nothing could name it); back them up in the oci format',
      );
    }
    const tag = item.tag;
    const sourceRepository = source.repository(item.repository);
    const root = await sourceRepository.getManifest({ tag });
    digest = root.descriptor.digest;
    const chosen = await choosePlatform(sourceRepository, root, settings.platform);
    const key = archiveKey(settings.label, item.repository, tag, settings.compression);
    const repository = store.repository(item.repository);
    const base = {
      repository: item.repository,
      tag,
      digest,
      archiveInfo: {
        key,
        compression: settings.compression,
        platform: chosen.platform,
        ...(chosen.sourcePlatforms.length > 1 ? { sourcePlatforms: chosen.sourcePlatforms } : {}),
      },
    };

    const latest = await repository.latestRecord(tag);
    const previous = latest?.record.archive;
    if (
      latest &&
      latest.record.digest === digest &&
      isArchiveRecord(latest.record) &&
      previous?.key === key &&
      previous.platform === chosen.platform
    ) {
      if ((await store.archiveSize(key)) === previous.size) {
        result = {
          ...resultBase(base, started),
          status: 'unchanged',
          blobsCopied: 0,
          bytesCopied: 0,
          bytesDeduplicated: previous.size,
          archive: { ...base.archiveInfo, sha256: previous.sha256, size: previous.size },
        };
        onProgress?.({ type: 'image-done', result });
        return result;
      }
    }

    store.assertWritable();
    const registry = await skopeoRegistry(source);
    const written = await writeArchive({
      store,
      key,
      compression: settings.compression,
      tmpRoot: settings.tmpRoot,
      from: (workspace) =>
        workspace
          .registryOptions('src', registry)
          .then((options) => [
            ...options,
            `docker://${registry.host}/${item.repository}@${chosen.manifest.descriptor.digest}`,
            `docker-archive:/dev/stdout:${registry.host}/${item.repository}:${tag}`,
          ]),
      onBytes: (count) => onProgress?.({ type: 'bytes', count }),
    });
    await repository.putArchiveRecord(tag, root.descriptor, {
      key,
      sha256: written.sha256,
      size: written.size,
      compression: settings.compression,
      platform: chosen.platform,
      configDigest: chosen.configDigest,
    });
    result = copiedResult(base, started, { ...base.archiveInfo, sha256: written.sha256, size: written.size });
  } catch (error) {
    const failed = { repository: item.repository, ...(item.tag !== undefined ? { tag: item.tag } : {}), ...(digest ? { digest } : {}) };
    result = failedResult(failed, started, `${item.tag ?? item.digest}`, error);
  }
  onProgress?.({ type: 'image-done', result });
  return result;
}
