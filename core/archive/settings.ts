// The docker-archive format's settings and names, without any process or I/O (the listing Lambda
// imports this to tell unchanged images from ones a run must archive).
import { ArchiveCompression, ArchiveLabel, PlatformName, type ArchiveFormat } from '../../schema/contract.ts';
import type { ImageListing } from '../model/endpoint.ts';
import type { Platform } from '../model/manifest.ts';

const ARCHIVE_EXTENSIONS: Record<ArchiveCompression, string> = { none: '.tar', gzip: '.tar.gz', zstd: '.tar.zst' };

export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

const DEFAULT_PLATFORM = 'linux/amd64';

/** What the docker-archive format writes (backup). */
export interface ArchiveSettings {
  /** First key segment; default the region, else `local`. */
  label: string;
  compression: ArchiveCompression;
  /** The platform taken from a multi-arch source. */
  platform: string;
  /** Where private temp directories go (default: the OS temp directory). */
  tmpRoot?: string;
}

/** Settings with defaults applied and every value checked; throws ArchiveError naming the bad one. */
export function resolveArchiveSettings(
  input: { label?: string; compression?: string; platform?: string; region?: string; tmpRoot?: string } = {},
): ArchiveSettings {
  const label = input.label ?? (input.region || 'local');
  const checked = {
    label: ArchiveLabel.safeParse(label),
    compression: ArchiveCompression.safeParse(input.compression ?? 'none'),
    platform: PlatformName.safeParse(input.platform ?? DEFAULT_PLATFORM),
  };
  for (const [name, result] of Object.entries(checked)) {
    if (!result.success)
      throw new ArchiveError(
        `invalid archive ${name} ${JSON.stringify((input as Record<string, unknown>)[name] ?? label)}: ${result.error.issues[0]?.message}`,
      );
  }
  return {
    label: checked.label.data!,
    compression: checked.compression.data!,
    platform: checked.platform.data!,
    ...(input.tmpRoot ? { tmpRoot: input.tmpRoot } : {}),
  };
}

/** `<label>/<repository>/<tag>.tar[.gz|.zst]`, relative to the store root. */
export function archiveKey(label: string, repository: string, tag: string, compression: ArchiveCompression): string {
  return `${label}/${repository}/${tag}${ARCHIVE_EXTENSIONS[compression]}`;
}

export function platformName(platform: Platform): string {
  return `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
}

/**
 * Whether a store listing already holds what a backup in `format` would write for this tag with
 * this source digest (the listing Lambda leaves such images out of the run).
 */
export function listingIsCurrent(
  listing: ImageListing,
  wanted: { repository: string; tag?: string; digest: string; format: ArchiveFormat; settings?: ArchiveSettings },
): boolean {
  if (listing.digest !== wanted.digest || listing.tag !== wanted.tag) return false;
  if (wanted.format === 'oci') return (listing.format ?? 'oci') === 'oci';
  const settings = wanted.settings;
  const archive = listing.archive;
  return (
    listing.format === 'docker-archive' &&
    listing.tag !== undefined &&
    settings !== undefined &&
    archive?.key === archiveKey(settings.label, wanted.repository, listing.tag, settings.compression) &&
    // The platform setting only chooses among the children of a multi-arch source.
    (!archive.fromIndex || platformSatisfies(settings.platform, archive.platform))
  );
}

/** A platform satisfies a requested one when os and arch match, and the variant when one is asked for. */
export function platformSatisfies(requested: string, platform: string): boolean {
  const [os, arch, variant] = requested.split('/');
  const [pos, parch, pvariant] = platform.split('/');
  return os === pos && arch === parch && (variant === undefined || variant === pvariant);
}
