// Test images built without a Docker engine and pushed into a test registry (see registry.ts).
//
// Images are built with umoci into OCI layouts in a per-process temp dir, then pushed with
// `skopeo copy oci:LAYOUT:TAG docker://HOST/REPO:TAG` (manifest bytes are copied unchanged, so the
// registry's digest is the layout's digest; every push checks that). Layer content is random, so
// gzip cannot shrink it and byte counts mean what they say.
//
// Built layouts are cached per process by their parameters: asking twice for the same fixture
// (same sizes, same `variant`) pushes the SAME content (same digests). Pass a different `variant`
// to get different content with the same shape.
//
// Every push function returns what a test asserts against: the manifest digest as the registry
// serves it (sha256 of `skopeo inspect --raw`), the media type, and the unique blobs.
//
// This file: the image fixtures (single-platform, many-layer, multi-arch, shared-base, random). The
// layouts and pushes are in oci-layout.ts, artifacts and signatures in fixture-artifacts.ts, raw
// HTTP pushes in http-push.ts, skopeo/umoci helpers in fixture-tools.ts, types in fixture-types.ts.
import { MediaType, type Platform } from '../../core/model/manifest.ts';
import type { ManifestRef, PushedImage, RegistryTarget, SharedBaseTags } from './fixture-types.ts';
import { cached } from './fixture-scratch.ts';
import { addTag, buildImage, newLayout, push, tagEntry, uniqueBlobs, writeBlob } from './oci-layout.ts';

const KiB = 1024;

export interface ImageOptions {
  repository: string;
  tag?: string;
  /** Layer sizes in bytes (default: one 64 KiB layer). */
  layerSizes?: number[];
  platform?: Platform;
  /** Same parameters + same variant = same content (cached). */
  variant?: string;
}

/** A single-platform OCI image (by default one small random layer). */
export async function pushImage(target: RegistryTarget, options: ImageOptions): Promise<PushedImage> {
  const layerSizes = options.layerSizes ?? [64 * KiB];
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const key = `image|${layerSizes.join(',')}|${platform.os}/${platform.architecture}/${platform.variant ?? ''}|${options.variant ?? ''}`;
  const layout = await cached(key, async () => {
    const layout = await newLayout('image');
    await buildImage(layout, 'img', { layerSizes, platform });
    return layout;
  });
  return push(target, layout, 'img', options.repository, options.tag ?? 'latest');
}

/** An image with many small layers (default 40 layers of 4 KiB). */
export async function pushManyLayerImage(
  target: RegistryTarget,
  options: { repository: string; tag?: string; layers?: number; layerSize?: number; variant?: string },
): Promise<PushedImage> {
  return pushImage(target, {
    repository: options.repository,
    tag: options.tag ?? 'layers',
    layerSizes: Array.from({ length: options.layers ?? 40 }, () => options.layerSize ?? 4 * KiB),
    variant: options.variant,
  });
}

const DEFAULT_PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

/**
 * A multi-platform OCI image index (default linux/amd64 + linux/arm64), each child a separate image
 * with its own random layer. umoci cannot write an index: the index blob is written by hand.
 */
export async function pushMultiArchIndex(
  target: RegistryTarget,
  options: { repository: string; tag?: string; layerSize?: number; platforms?: Platform[]; variant?: string },
): Promise<PushedImage> {
  const platforms = options.platforms ?? DEFAULT_PLATFORMS;
  const layerSize = options.layerSize ?? 32 * KiB;
  const key = `index|${layerSize}|${platforms.map((p) => `${p.os}/${p.architecture}/${p.variant ?? ''}`).join(',')}|${options.variant ?? ''}`;
  const layout = await cached(key, async () => {
    const layout = await newLayout('index');
    const manifests: ManifestRef[] = [];
    for (const [i, platform] of platforms.entries()) {
      await buildImage(layout, `p${i}`, { layerSizes: [layerSize], platform });
      const entry = await tagEntry(layout, `p${i}`);
      manifests.push({ mediaType: entry.mediaType, digest: entry.digest, size: entry.size, platform });
    }
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
    const digest = await writeBlob(layout, bytes);
    await addTag(layout, 'index', { mediaType: MediaType.OciIndex, digest, size: bytes.byteLength });
    return layout;
  });
  return push(target, layout, 'index', options.repository, options.tag ?? 'multi');
}

/**
 * `tags` tags of one repository that share one base layer of `baseSize` bytes, each with its own
 * layer of `uniqueSize` bytes on top. The base is built once and the tags are derived from it, so
 * the base blob is byte-identical across tags (the registry stores it once).
 */
export async function pushSharedBaseTags(
  target: RegistryTarget,
  options: { repository: string; tags: number | string[]; baseSize: number; uniqueSize: number; variant?: string },
): Promise<SharedBaseTags> {
  const tags = typeof options.tags === 'number' ? Array.from({ length: options.tags }, (_, i) => `v${i + 1}`) : options.tags;
  const base = await cached(`shared-base|${options.baseSize}|${options.variant ?? ''}`, async () => {
    const layout = await newLayout('shared');
    await buildImage(layout, 'base', { layerSizes: [options.baseSize] });
    // Builds into this shared layout are serialised: concurrent umoci runs would race on index.json.
    return { layout, derived: new Map<string, Promise<void>>(), queue: Promise.resolve() as Promise<unknown> };
  });
  const images: PushedImage[] = [];
  // Layout tags are per (index, uniqueSize) so a later call with more tags reuses the earlier ones.
  for (const [i, tag] of tags.entries()) {
    const layoutTag = `t${i}-${options.uniqueSize}`;
    let derived = base.derived.get(layoutTag);
    if (!derived) {
      derived = base.queue.then(() => buildImage(base.layout, layoutTag, { layerSizes: [options.uniqueSize], from: 'base' }));
      base.queue = derived.catch(() => undefined);
      base.derived.set(layoutTag, derived);
    }
    await derived;
    images.push(await push(target, base.layout, layoutTag, options.repository, tag));
  }
  const baseLayer = images[0]?.blobs.find((b) => b.mediaType !== MediaType.OciImageConfig);
  if (!baseLayer) throw new Error('no tags requested');
  const blobs = uniqueBlobs(images.flatMap((image) => image.blobs));
  return { repository: options.repository, images, base: baseLayer, blobs, blobBytes: blobs.reduce((s, b) => s + b.size, 0) };
}

/**
 * `count` unrelated single-layer images of `size` random bytes each, for the benchmark. Image i goes
 * to `repository(i)` (default `random-i`) with tag `tag` (default `latest`).
 */
export async function pushRandomImages(
  target: RegistryTarget,
  options: { count: number; size: number; repository?: (i: number) => string; tag?: string; variant?: string; concurrency?: number },
): Promise<PushedImage[]> {
  const results: PushedImage[] = new Array(options.count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < options.count; i = next++) {
      results[i] = await pushImage(target, {
        repository: options.repository?.(i) ?? `random-${i}`,
        tag: options.tag ?? 'latest',
        layerSizes: [options.size],
        variant: `random-${i}|${options.variant ?? ''}`,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 2, options.count)) }, worker));
  return results;
}
