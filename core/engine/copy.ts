// The copy engine: one algorithm for backup (registry -> store) and restore (store -> registry).
// Order is what makes a copy safe to interrupt: blobs first, then child manifests, then the root
// manifest, then the tag. A destination therefore never holds a manifest whose content is missing,
// and "the root manifest is present" means "the image is complete" (see ImageRepository.hasManifest).
import { errorText } from '../redact.ts';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImageResult } from '../../schema/contract.ts';
import type { ImageReference, ImageRepository } from '../model/endpoint.ts';
import { blobsOf, childManifests, type Descriptor, type Manifest } from '../model/manifest.ts';
import { createLimiter, type Limiter } from '../limiter.ts';
import { RegistryError } from '../registry/errors.ts';
import { backoff, DEFAULT_HTTP_OPTIONS, isTransientError, mayRetry } from '../registry/http.ts';

export type ProgressEvent =
  | { type: 'image-start'; repository: string; reference: string }
  | { type: 'image-done'; result: ImageResult }
  | { type: 'bytes'; count: number };

export interface CopierOptions {
  /** Blob transfers in flight across all images. */
  blobConcurrency?: number;
  onProgress?: (event: ProgressEvent) => void;
}

interface CopyStats {
  blobsCopied: number;
  bytesCopied: number;
  bytesDeduplicated: number;
}

/** An error's text, with the HTTP status an AWS SDK error carries when its message lacks it. */
function causeText(error: unknown): string {
  const text = errorText(error);
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' && !text.includes(String(status)) ? `${text} (HTTP ${status})` : text;
}

/**
 * Copies images between two endpoints. One Copier serves a whole run so that a blob shared by many
 * images is transferred once even when those images are copied at the same time: concurrent
 * requests for the same destination blob wait on the first transfer instead of starting their own.
 */
export class Copier {
  private readonly blobLimit: Limiter;
  private readonly transfers = new Map<string, Promise<boolean>>();
  /**
   * Child manifests being copied, by destination and digest: an index that lists a child twice, or
   * nested indexes that share children, copy each once (walked naively, 16 levels of duplicates made
   * 19,600 requests), and identical manifest PUTs never race each other (the registry answered such a
   * race with DIGEST_INVALID).
   */
  private readonly manifestCopies = new Map<string, Promise<boolean>>();

  constructor(private readonly options: CopierOptions = {}) {
    this.blobLimit = createLimiter(options.blobConcurrency ?? 8);
  }

  /** Copies one image and returns its result; failures are returned, not thrown. */
  async copyImage(source: ImageRepository, destination: ImageRepository, ref: ImageReference): Promise<ImageResult> {
    const started = performance.now();
    const reference = 'tag' in ref ? ref.tag : ref.digest;
    const tag = 'tag' in ref ? ref.tag : undefined;
    this.options.onProgress?.({ type: 'image-start', repository: source.name, reference });
    const stats: CopyStats = { blobsCopied: 0, bytesCopied: 0, bytesDeduplicated: 0 };
    let result: ImageResult;
    let digest: string | undefined;
    try {
      const root = await source.getManifest(ref);
      digest = root.descriptor.digest;
      const complete = await destination.hasManifest(root.descriptor);
      if (!complete) await this.copyTree(source, destination, root, stats);
      await destination.putManifest(root, ref);
      result = { ...this.base(source, destination, tag, digest, started), ...stats, status: complete ? 'unchanged' : 'copied' };
    } catch (error) {
      const cause = errorText(error);
      result = {
        ...this.base(source, destination, tag, digest, started),
        ...stats,
        status: 'failed',
        error: `${source.name}:${reference}: ${cause}`,
      };
    }
    this.options.onProgress?.({ type: 'image-done', result });
    return result;
  }

  private base(
    source: ImageRepository,
    destination: ImageRepository,
    tag: string | undefined,
    digest: string | undefined,
    started: number,
  ) {
    return {
      repository: source.name,
      ...(destination.name !== source.name ? { targetRepository: destination.name } : {}),
      ...(tag !== undefined ? { tag } : {}),
      ...(digest !== undefined ? { digest } : {}),
      durationMs: Math.round(performance.now() - started),
    };
  }

  /** Copies everything `manifest` references, children before parents; does not write `manifest` itself. */
  private async copyTree(source: ImageRepository, destination: ImageRepository, manifest: Manifest, stats: CopyStats): Promise<void> {
    const children = new Map(childManifests(manifest).map((d) => [d.digest, d]));
    await Promise.all([...children.values()].map((child) => this.copyChild(source, destination, child, stats)));
    const unique = new Map(blobsOf(manifest).map((d) => [d.digest, d]));
    await Promise.all([...unique.values()].map((blob) => this.copyBlob(source, destination, blob, stats)));
  }

  private async copyChild(source: ImageRepository, destination: ImageRepository, child: Descriptor, stats: CopyStats): Promise<void> {
    const key = `${destination.name}@${child.digest}`;
    let copy = this.manifestCopies.get(key);
    if (copy) {
      await copy;
      return;
    }
    copy = (async () => {
      if (await destination.hasManifest(child)) return false;
      const childManifest = await source.getManifest({ digest: child.digest, mediaType: child.mediaType });
      await this.copyTree(source, destination, childManifest, stats);
      await destination.putManifest(childManifest);
      stats.bytesCopied += childManifest.bytes.byteLength;
      return true;
    })();
    this.manifestCopies.set(key, copy);
    copy.catch(() => this.manifestCopies.delete(key));
    await copy;
  }

  private async copyBlob(source: ImageRepository, destination: ImageRepository, blob: Descriptor, stats: CopyStats): Promise<void> {
    const key = destination.blobsSharedAcrossRepositories ? blob.digest : `${destination.name}@${blob.digest}`;
    let transfer = this.transfers.get(key);
    const mine = !transfer;
    if (!transfer) {
      transfer = this.blobLimit(() => this.transferBlob(source, destination, blob));
      this.transfers.set(key, transfer);
      // A failed transfer must not poison later attempts (another image may get good bytes).
      transfer.catch(() => this.transfers.delete(key));
    }
    let copied: boolean;
    try {
      copied = await transfer;
    } catch (error) {
      // Says where: the blob and both ends (the image's repository:tag is added by copyImage).
      const from = source.location ?? source.name;
      const to = destination.location ?? destination.name;
      throw new Error(`copying blob ${blob.digest} from ${from} to ${to}: ${causeText(error)}`, { cause: error });
    }
    if (copied && mine) {
      stats.blobsCopied += 1;
      stats.bytesCopied += blob.size;
    } else {
      stats.bytesDeduplicated += blob.size;
    }
  }

  /**
   * Transfers one blob, again from the start after a transient failure the layers below could not
   * absorb (a chunked upload whose PATCH broke: its session is cancelled and a new one opened).
   */
  private async transferBlob(source: ImageRepository, destination: ImageRepository, blob: Descriptor): Promise<boolean> {
    const policy = DEFAULT_HTTP_OPTIONS.retry;
    const began = Date.now();
    for (let n = 1; ; n++) {
      try {
        return await this.transferOnce(source, destination, blob);
      } catch (error) {
        if (!isTransientError(error) || !mayRetry(policy, n, began)) throw error;
        await backoff(policy, n, error instanceof RegistryError ? error.retryAfterMs : undefined);
      }
    }
  }

  /** Streams one blob through a verifier; returns false when the destination already had it. */
  private async transferOnce(source: ImageRepository, destination: ImageRepository, blob: Descriptor): Promise<boolean> {
    if (await destination.hasBlob(blob)) return false;
    if (await destination.mountBlob?.(blob)) return false;
    const body = await source.openBlob(blob);
    // The destination verifies size and sha256 as it writes (ImageRepository.putBlob), so this
    // stream only counts bytes for progress (a second hash pass here measured ~1.7 s CPU per GiB).
    const counted = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.options.onProgress?.({ type: 'bytes', count: chunk.length });
        callback(null, chunk);
      },
    });
    // pipeline forwards a source error (reset, truncation) into `counted`, which the destination is
    // reading, so the destination sees the failure and commits nothing. The outcome is captured at
    // once so a failure found while putBlob is still running is never an unhandled rejection.
    // A source failure (reset, truncation) explains the destination's. An abort or premature close
    // is only the echo of the destination giving up (its reader stopped) and must not hide its real,
    // maybe transient, error.
    const flowing = pipeline(body, counted).then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      await destination.putBlob(blob, counted);
    } catch (error) {
      counted.destroy();
      body.destroy();
      const sourceError = await flowing;
      const echo = (sourceError as { code?: unknown } | undefined)?.code;
      throw sourceError !== undefined && echo !== 'ABORT_ERR' && echo !== 'ERR_STREAM_PREMATURE_CLOSE' ? sourceError : error;
    }
    const failure = await flowing;
    if (failure) throw failure;
    return true;
  }
}
