// OCI layouts built with umoci and pushed with skopeo, each push checked to keep the layout's
// manifest digest.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { MediaType, type Platform } from '../../core/model/manifest.ts';
import { sha256Digest, type Digest } from '../../core/model/digest.ts';
import { scratch } from './fixture-scratch.ts';
import { credsArg, dockerRef, inspectRaw, umoci, writeRandomFile } from './fixture-tools.ts';
import type { BlobRef, ManifestRef, PushedImage, RegistryTarget } from './fixture-types.ts';

export interface Layout {
  dir: string;
}

interface LayoutEntry {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

interface ParsedManifest {
  mediaType?: string;
  artifactType?: string;
  config?: BlobRef;
  layers?: BlobRef[];
  manifests?: ManifestRef[];
}

const REF_NAME = 'org.opencontainers.image.ref.name';

async function readIndex(layout: Layout): Promise<{ schemaVersion: 2; manifests: LayoutEntry[] }> {
  const index = JSON.parse(await readFile(join(layout.dir, 'index.json'), 'utf8'));
  // A fresh `umoci init` layout has `"manifests": null`.
  return { ...index, manifests: index.manifests ?? [] };
}

async function readBlob(layout: Layout, digest: string): Promise<Buffer> {
  return readFile(join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

export async function writeBlob(layout: Layout, bytes: Buffer): Promise<Digest> {
  const digest = sha256Digest(bytes);
  await writeFile(join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return digest;
}

export async function tagEntry(layout: Layout, tag: string): Promise<LayoutEntry> {
  const entry = (await readIndex(layout)).manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!entry) throw new Error(`tag ${tag} not in layout ${layout.dir}`);
  return entry;
}

/** Adds (or replaces) a tagged entry in the layout's index.json. */
export async function addTag(layout: Layout, tag: string, entry: Omit<LayoutEntry, 'annotations'>): Promise<void> {
  const index = await readIndex(layout);
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ ...entry, annotations: { [REF_NAME]: tag } });
  await writeFile(join(layout.dir, 'index.json'), JSON.stringify(index));
}

export async function newLayout(name: string): Promise<Layout> {
  const dir = join(await scratch(name), 'layout');
  await umoci(['init', '--layout', dir]);
  return { dir };
}

/** Creates image `tag` (from scratch, or on top of `from`) with one random layer per size. */
export async function buildImage(
  layout: Layout,
  tag: string,
  options: { layerSizes: number[]; platform?: Platform; from?: string },
): Promise<void> {
  const image = `${layout.dir}:${tag}`;
  if (options.from) {
    await umoci(['config', '--image', `${layout.dir}:${options.from}`, '--tag', tag, '--config.label', `fixture.tag=${tag}`]);
  } else {
    await umoci(['new', '--image', image]);
    const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
    await umoci(['config', '--image', image, '--os', platform.os, '--architecture', platform.architecture]);
  }
  const work = await scratch('layer');
  for (const [i, size] of options.layerSizes.entries()) {
    const file = join(work, `layer-${i}.bin`);
    await writeRandomFile(file, size);
    await umoci(['insert', '--image', image, file, `/data/${tag}-${i}.bin`]);
    await rm(file);
  }
  await rm(work, { recursive: true, force: true });
}

/** Everything about a manifest in a layout, read from the layout (whose bytes the push preserves). */
async function describe(layout: Layout, entry: LayoutEntry): Promise<Omit<PushedImage, 'repository' | 'tag' | 'reference'>> {
  const bytes = await readBlob(layout, entry.digest);
  const parsed = JSON.parse(bytes.toString('utf8')) as ParsedManifest;
  const mediaType = parsed.mediaType ?? entry.mediaType;
  const top: ManifestRef = {
    digest: entry.digest,
    size: bytes.byteLength,
    mediaType,
    ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
  };
  const children = (parsed.manifests ?? []).map((m) => ({
    digest: m.digest,
    size: m.size,
    mediaType: m.mediaType,
    ...(m.platform ? { platform: m.platform } : {}),
  }));
  const images: ParsedManifest[] = parsed.manifests
    ? await Promise.all(children.map(async (c) => JSON.parse((await readBlob(layout, c.digest)).toString('utf8')) as ParsedManifest))
    : [parsed];
  const blobs = uniqueBlobs(images.flatMap((m) => [...(m.config ? [m.config] : []), ...(m.layers ?? [])]));
  return {
    digest: entry.digest,
    mediaType,
    size: bytes.byteLength,
    ...(parsed.config ? { configDigest: parsed.config.digest, configMediaType: parsed.config.mediaType } : {}),
    ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
    children,
    blobs,
    blobBytes: blobs.reduce((sum, b) => sum + b.size, 0),
    manifests: [top, ...children],
  };
}

export function uniqueBlobs(blobs: BlobRef[]): BlobRef[] {
  const seen = new Map<string, BlobRef>();
  for (const b of blobs) if (!seen.has(b.digest)) seen.set(b.digest, { digest: b.digest, size: b.size, mediaType: b.mediaType });
  return [...seen.values()];
}

/**
 * Pushes `layoutTag` of a layout to HOST/repository:tag with skopeo, then checks the registry serves
 * the layout's exact manifest bytes.
 */
export async function push(
  target: RegistryTarget,
  layout: Layout,
  layoutTag: string,
  repository: string,
  tag: string,
): Promise<PushedImage> {
  const entry = await tagEntry(layout, layoutTag);
  const reference = `${target.host}/${repository}:${tag}`;
  const isList = entry.mediaType === MediaType.OciIndex || entry.mediaType === MediaType.DockerManifestList;
  const tmp = await scratch('skopeo');
  try {
    await execa('skopeo', [
      '--insecure-policy',
      '--tmpdir',
      tmp,
      'copy',
      '-q',
      '--preserve-digests',
      '--dest-tls-verify=false',
      ...(target.credentials ? credsArg('--dest-creds', target.credentials) : ['--dest-no-creds']),
      ...(isList ? ['--all'] : []),
      `oci:${layout.dir}:${layoutTag}`,
      dockerRef(reference),
    ]);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const served = await inspectRaw(reference, target.credentials);
  if (served.digest !== entry.digest) {
    throw new Error(`pushed ${reference}: registry serves manifest ${served.digest}, layout has ${entry.digest}`);
  }
  return { repository, tag, reference, ...(await describe(layout, entry)) };
}
