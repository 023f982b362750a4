// Small tools the fixtures build and check with: random (incompressible) files, umoci, and skopeo
// (references, credentials, the manifest and config digest as the registry serves them).
import { randomFill } from 'node:crypto';
import { open } from 'node:fs/promises';
import { execa } from 'execa';
import { MediaType, type Platform } from '../../core/model/manifest.ts';
import { sha256Digest, type Digest } from '../../core/model/digest.ts';
import type { Credentials, ManifestRef } from './fixture-types.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

function fill(buffer: Buffer): Promise<void> {
  return new Promise((resolve, reject) => randomFill(buffer, (err) => (err ? reject(err) : resolve())));
}

/** Writes `size` bytes of random (incompressible) data to `path`. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const chunk = Buffer.allocUnsafe(Math.min(size, 4 * MiB));
    for (let written = 0; written < size; ) {
      const n = Math.min(chunk.length, size - written);
      await fill(chunk);
      await handle.write(chunk, 0, n);
      written += n;
    }
  } finally {
    await handle.close();
  }
}

export async function umoci(args: string[]): Promise<void> {
  const rootless = typeof process.getuid === 'function' && process.getuid() !== 0 ? ['--rootless'] : [];
  await execa('umoci', [...rootless, ...args]);
}

export function credsArg(flag: string, credentials?: Credentials): string[] {
  return credentials ? [flag, `${credentials.username}:${credentials.password}`] : [];
}

/** Strips `docker://`; accepts `HOST/REPO:TAG` or `HOST/REPO@DIGEST`. */
export function dockerRef(ref: string): string {
  return `docker://${ref.replace(/^docker:\/\//, '')}`;
}

/** `HOST/REPO` of a `HOST/REPO:TAG` or `HOST/REPO@DIGEST` reference. */
function repositoryOf(ref: string): string {
  const bare = ref.replace(/^docker:\/\//, '');
  const at = bare.indexOf('@');
  if (at >= 0) return bare.slice(0, at);
  const slash = bare.lastIndexOf('/');
  const colon = bare.lastIndexOf(':');
  return colon > slash ? bare.slice(0, colon) : bare;
}

/** The manifest as the registry serves it, via skopeo (the independent client tests compare with). */
export async function inspectRaw(
  hostRef: string,
  credentials?: Credentials,
): Promise<{ bytes: Buffer; digest: Digest; mediaType: string }> {
  const { stdout } = await execa(
    'skopeo',
    ['inspect', '--raw', '--tls-verify=false', ...(credentials ? credsArg('--creds', credentials) : ['--no-creds']), dockerRef(hostRef)],
    { encoding: 'buffer', stripFinalNewline: false },
  );
  const bytes = Buffer.from(stdout);
  const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown };
  const mediaType = parsed.mediaType ?? (parsed.manifests ? MediaType.OciIndex : MediaType.OciManifest);
  return { bytes, digest: sha256Digest(bytes), mediaType };
}

/**
 * The config digest of an image (the "image ID"), read from the raw manifest. For an index, the
 * child for `platform` (default linux/amd64) is followed.
 */
export async function inspectConfigDigest(
  hostRef: string,
  credentials?: Credentials,
  platform: Platform = { os: 'linux', architecture: 'amd64' },
): Promise<Digest> {
  const { bytes } = await inspectRaw(hostRef, credentials);
  const parsed = JSON.parse(bytes.toString('utf8')) as { config?: { digest: Digest }; manifests?: ManifestRef[] };
  if (parsed.config) return parsed.config.digest;
  const child = parsed.manifests?.find(
    (m) =>
      m.platform?.os === platform.os &&
      m.platform.architecture === platform.architecture &&
      (platform.variant === undefined || m.platform.variant === platform.variant),
  );
  if (!child) throw new Error(`${hostRef}: no manifest for ${platform.os}/${platform.architecture}`);
  return inspectConfigDigest(`${repositoryOf(hostRef)}@${child.digest}`, credentials, platform);
}
