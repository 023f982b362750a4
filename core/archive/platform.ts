// Which image a docker-archive backup holds: the source itself, or one platform's child of a multi-arch
// index; docker-archive holds container images only (image config media types).
import { assertDigest } from '../model/digest.ts';
import type { ImageRepository } from '../model/endpoint.ts';
import { childManifests, isIndex, MediaType, type Descriptor, type Manifest } from '../model/manifest.ts';
import { readAll } from '../store/object-store.ts';
import { ArchiveError, platformName, platformSatisfies } from './settings.ts';

const IMAGE_CONFIG_TYPES = new Set<string>([MediaType.DockerImageConfig, MediaType.OciImageConfig]);
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

interface Chosen {
  /** The image manifest skopeo archives (the platform's child of an index). */
  manifest: Manifest;
  platform: string;
  sourcePlatforms: string[];
  configDigest: string;
}
/** Picks the image to archive: the source itself, or the requested platform's child of an index. */
export async function choosePlatform(repository: ImageRepository, root: Manifest, requested: string): Promise<Chosen> {
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
