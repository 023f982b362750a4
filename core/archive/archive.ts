// The docker-archive format: each tag as one `docker load`-able tar in the store, at
// `<label>/<repository>/<tag>.tar[.gz|.zst]`, made and read back by skopeo.
//
// Backup: the source manifest is resolved with our own registry client (its digest is what the
// catalog records; for a multi-arch source, one platform's child is chosen), then
// `skopeo copy docker://<host>/<repo>@<digest> docker-archive:/dev/stdout:<host>/<repo>:<tag>`
// streams the tar through optional compression and a sha256/size counter straight into the store
// (an S3 multipart upload or an atomic file write; no temp file of ours). skopeo's stdout stream
// errors instead of ending when skopeo fails, so a partial tar is never committed. The catalog
// record is written after the tar: { digest: the SOURCE manifest digest, format: 'docker-archive',
// archive: { key, sha256, size, compression, platform, configDigest } }.
//
// Restore: the tar is read back, checked against the recorded sha256 and size, decompressed into a
// private temp file (skopeo cannot read a docker-archive from a pipe), and pushed with
// `skopeo copy docker-archive:FILE docker://...`. The pushed manifest always has a NEW digest
// (skopeo recompresses the layers); only the config digest, the image ID, survives, and it is
// checked against the record. The temp directory is removed in every case.
import { errorText } from '../redact.ts';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExecaError } from 'execa';
import type { ArchiveCompression, ArchiveFormat, ImageResult, WorkItem } from '../../schema/contract.ts';
import { assertDigest } from '../model/digest.ts';
import type { ImageEndpoint, ImageListing, ImageRepository } from '../model/endpoint.ts';
import { childManifests, isIndex, MediaType, type Descriptor, type Manifest } from '../model/manifest.ts';
import type { ProgressEvent } from '../engine/copy.ts';
import { BackupStore } from '../store/backup-store.ts';
import { recordFormat, type CatalogRecord } from '../store/layout.ts';
import { readAll } from '../store/object-store.ts';
import { compressor, type Codec } from './compression.ts';
import { ArchiveError, archiveKey, platformName, platformSatisfies, resolveArchiveSettings, type ArchiveSettings } from './settings.ts';
import { skopeoCopy, skopeoRegistry, stop, toolError, Workspace } from './skopeo.ts';
import { unpackArchive } from './unpack.ts';

export * from './settings.ts';

export interface ArchiveHandlerOptions {
  mode: 'backup' | 'restore';
  source: ImageEndpoint;
  destination: ImageEndpoint;
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
    if (!(options.destination instanceof BackupStore))
      throw new ArchiveError(`the docker-archive format writes to a backup store, not ${options.destination.description}`);
    const settings = resolveArchiveSettings(options.settings ?? {});
    const store = options.destination;
    return (item) => backupArchive({ source: options.source, store, item, settings, onProgress: options.onProgress });
  }
  if (!(options.source instanceof BackupStore)) return undefined;
  const store = options.source;
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
      destination: options.destination,
      item,
      record,
      targetRepository,
      tmpRoot: options.settings?.tmpRoot,
      onProgress: options.onProgress,
    });
  };
}

// ---- backup ---------------------------------------------------------------------------------------

const IMAGE_CONFIG_TYPES = new Set<string>([MediaType.DockerImageConfig, MediaType.OciImageConfig]);
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

interface Chosen {
  /** The image manifest skopeo archives (the platform's child of an index). */
  manifest: Manifest;
  platform: string;
  sourcePlatforms: string[];
  configDigest: string;
}

async function backupArchive(context: {
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
      recordFormat(latest.record) === 'docker-archive' &&
      previous?.key === key &&
      previous.platform === chosen.platform
    ) {
      const head = await store.objects.head(key);
      if (head?.size === previous.size) {
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
    result = {
      ...resultBase(base, started),
      status: 'copied',
      blobsCopied: 1,
      bytesCopied: written.size,
      bytesDeduplicated: 0,
      archive: { ...base.archiveInfo, sha256: written.sha256, size: written.size },
    };
  } catch (error) {
    result = {
      ...resultBase(
        { repository: item.repository, ...(item.tag !== undefined ? { tag: item.tag } : {}), ...(digest ? { digest } : {}) },
        started,
      ),
      status: 'failed',
      blobsCopied: 0,
      bytesCopied: 0,
      bytesDeduplicated: 0,
      error: `${item.repository}:${item.tag ?? item.digest}: ${errorText(error)}`,
    };
  }
  onProgress?.({ type: 'image-done', result });
  return result;
}

function resultBase(base: { repository: string; targetRepository?: string; tag?: string; digest?: string }, started: number) {
  return {
    repository: base.repository,
    ...(base.targetRepository && base.targetRepository !== base.repository ? { targetRepository: base.targetRepository } : {}),
    ...(base.tag !== undefined ? { tag: base.tag } : {}),
    ...(base.digest !== undefined ? { digest: base.digest } : {}),
    durationMs: Math.round(performance.now() - started),
  };
}

/** Picks the image to archive: the source itself, or the requested platform's child of an index. */
async function choosePlatform(repository: ImageRepository, root: Manifest, requested: string): Promise<Chosen> {
  if (!isIndex(root)) {
    const config = imageConfig(root);
    const platform = await configPlatform(repository, config);
    return { manifest: root, platform, sourcePlatforms: [platform], configDigest: config.digest };
  }
  const children = childManifests(root).filter(
    (c) => c.platform && !(c.platform.os === 'unknown' && c.platform.architecture === 'unknown'),
  );
  const sourcePlatforms = children.map((c) => platformName(c.platform!));
  const child = children.find((c) => platformSatisfies(requested, platformName(c.platform!)));
  if (!child) {
    throw new ArchiveError(
      `multi-arch source has no ${requested} image (it has ${sourcePlatforms.join(', ') || 'no platforms'}); choose one with --platform`,
    );
  }
  const manifest = await repository.getManifest({ digest: child.digest, mediaType: child.mediaType });
  if (isIndex(manifest)) throw new ArchiveError(`the ${requested} entry of the index is itself an index, which docker-archive cannot hold`);
  return { manifest, platform: platformName(child.platform!), sourcePlatforms, configDigest: imageConfig(manifest).digest };
}

function imageConfig(manifest: Manifest): Descriptor {
  const config = (JSON.parse(manifest.bytes.toString('utf8')) as { config?: Descriptor }).config;
  if (!config) throw new ArchiveError('the manifest has no config');
  if (!IMAGE_CONFIG_TYPES.has(config.mediaType)) {
    throw new ArchiveError(
      `not a container image (config media type ${config.mediaType}): docker-archive holds container images only; back it up in the oci format`,
    );
  }
  return config;
}

/** `os/arch[/variant]` from an image config (what a single-platform source is). */
async function configPlatform(repository: ImageRepository, config: Descriptor): Promise<string> {
  if (config.size > MAX_CONFIG_BYTES)
    throw new ArchiveError(`image config ${config.digest} is ${config.size} bytes, more than ${MAX_CONFIG_BYTES}`);
  const bytes = await readAll(await repository.openBlob(config));
  assertDigest(bytes, config);
  const parsed = JSON.parse(bytes.toString('utf8')) as { os?: string; architecture?: string; variant?: string };
  return platformName({
    os: parsed.os || 'unknown',
    architecture: parsed.architecture || 'unknown',
    ...(parsed.variant ? { variant: parsed.variant } : {}),
  });
}

/**
 * A pass-through that hashes and counts what the store receives. (Not `size`: lib-storage takes a
 * body's `size` property for its length.)
 */
class Measure extends Transform {
  private readonly hash = createHash('sha256');
  byteCount = 0;
  sha256 = '';

  constructor(private readonly onBytes?: (count: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.byteCount += chunk.length;
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.sha256 = `sha256:${this.hash.digest('hex')}`;
    callback();
  }
}

/** Streams skopeo's docker-archive output through compression and a counter into `key`. */
async function writeArchive(options: {
  store: BackupStore;
  key: string;
  compression: ArchiveCompression;
  tmpRoot?: string;
  from: (workspace: Workspace) => Promise<string[]>;
  onBytes?: (count: number) => void;
}): Promise<{ sha256: string; size: number }> {
  const workspace = await Workspace.create(options.tmpRoot);
  let codec: Codec | undefined;
  let skopeo: ReturnType<typeof skopeoCopy> | undefined;
  try {
    skopeo = skopeoCopy(workspace, await options.from(workspace), { stdout: true });
    codec = compressor(options.compression);
    const measure = new Measure(options.onBytes);
    const streams: (Readable | Duplex)[] = [skopeo.readable(), ...(codec ? [codec.stream] : []), measure];
    // The outcome is captured at once, so a failure while the store is still reading is never an
    // unhandled rejection; the store sees it as an error on `measure` and commits nothing.
    const flowing = pipeline(streams).then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      await options.store.objects.put(options.key, measure, { contentType: contentType(options.compression) });
    } catch (error) {
      measure.destroy();
      // skopeo's (or zstd's) failure is the cause when there is one; otherwise the store's error.
      const failure = await flowing;
      throw toolError(failure instanceof ExecaError ? failure : error, 'skopeo copy to docker-archive');
    }
    const failure = await flowing;
    if (failure) throw toolError(failure, 'skopeo copy to docker-archive');
    return { sha256: measure.sha256, size: measure.byteCount };
  } finally {
    await Promise.all([stop(skopeo), stop(codec?.subprocess)]);
    await workspace.dispose();
  }
}

function contentType(compression: ArchiveCompression): string {
  return compression === 'gzip' ? 'application/gzip' : compression === 'zstd' ? 'application/zstd' : 'application/x-tar';
}

// ---- restore --------------------------------------------------------------------------------------

async function restoreArchive(context: {
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
    const file = await unpackArchive(store.objects, archive, workspace.dir, { onBytes: (count) => onProgress?.({ type: 'bytes', count }) });
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
    result = {
      ...resultBase(base, started),
      status: 'copied',
      blobsCopied: 1,
      bytesCopied: archive.size,
      bytesDeduplicated: 0,
      archive: {
        key: archive.key,
        sha256: archive.sha256,
        size: archive.size,
        compression: archive.compression,
        platform: archive.platform,
        restoredDigest,
      },
    };
  } catch (error) {
    result = {
      ...resultBase(base, started),
      status: 'failed',
      blobsCopied: 0,
      bytesCopied: 0,
      bytesDeduplicated: 0,
      error: `${item.repository}:${item.tag ?? record.digest}: ${errorText(error)}`,
    };
  } finally {
    await workspace?.dispose();
  }
  onProgress?.({ type: 'image-done', result });
  return result;
}
