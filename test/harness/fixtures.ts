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
import { createHash, randomFill } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { MediaType, type Platform } from '../../core/model/manifest.ts';
import { sha256Digest, type Digest } from '../../core/model/digest.ts';
import { tempDir } from './process.ts';

// ---------------------------------------------------------------------------------------------
// Types

/** Where to push: a TestRegistry (from startRegistry) or anything with the same shape. */
export interface RegistryTarget {
  /** `127.0.0.1:PORT` */
  host: string;
  credentials?: Credentials;
}

export interface Credentials {
  username: string;
  password: string;
}

interface BlobRef {
  digest: Digest;
  size: number;
  mediaType: string;
}

interface ManifestRef {
  digest: Digest;
  size: number;
  mediaType: string;
  platform?: Platform;
  artifactType?: string;
}

export interface PushedImage {
  repository: string;
  tag: string;
  /** `HOST/REPOSITORY:TAG`, what skopeo's `docker://` takes. */
  reference: string;
  /** sha256 of the manifest (or index) bytes the registry serves. */
  digest: Digest;
  mediaType: string;
  /** Size of the top-level manifest (or index) in bytes. */
  size: number;
  /** Config digest of an image manifest (undefined for an index). */
  configDigest?: Digest;
  configMediaType?: string;
  artifactType?: string;
  /** Child manifests of an index ([] for an image manifest). */
  children: ManifestRef[];
  /** Unique config + layer blobs (over all children of an index), in manifest order. */
  blobs: BlobRef[];
  /** Sum of `blobs[].size`: the compressed bytes a copy of this image must move. */
  blobBytes: number;
  /** Every manifest a copy must store: the top-level one first, then the children. */
  manifests: ManifestRef[];
}

export interface SharedBaseTags {
  repository: string;
  images: PushedImage[];
  /** The base layer every tag has as its first layer. */
  base: BlobRef;
  /** Unique blobs over all tags (the base counted once). */
  blobs: BlobRef[];
  blobBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------------
// Process-wide scratch space, removed when the process exits.

// The dir name carries the pid. Test workers are often killed without an 'exit' event, so each
// process also sweeps the dirs of fixture processes that are gone.
const ROOT_PATTERN = /^ecr-backup-fixtures-(\d+)-/;

async function sweepStaleRoots(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    const pid = Number(ROOT_PATTERN.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let rootPromise: Promise<string> | undefined;
async function root(): Promise<string> {
  rootPromise ??= (async () => {
    await sweepStaleRoots();
    const dir = await tempDir(`fixtures-${process.pid}`);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  return rootPromise;
}

let counter = 0;
async function scratch(name: string): Promise<string> {
  const dir = join(await root(), `${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Removes every built layout now. Call it in afterAll: vitest's fork workers may be killed without
 * an 'exit' event (a later fixture process sweeps such leftovers, but only then).
 */
export async function cleanupFixtures(): Promise<void> {
  const dir = rootPromise ? await rootPromise : undefined;
  rootPromise = undefined;
  layoutCache.clear();
  if (dir) await rm(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Small tools

function fill(buffer: Buffer): Promise<void> {
  return new Promise((resolve, reject) => randomFill(buffer, (err) => (err ? reject(err) : resolve())));
}

/** Writes `size` bytes of random (incompressible) data to `path`. */
async function writeRandomFile(path: string, size: number): Promise<void> {
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

async function umoci(args: string[]): Promise<void> {
  const rootless = typeof process.getuid === 'function' && process.getuid() !== 0 ? ['--rootless'] : [];
  await execa('umoci', [...rootless, ...args]);
}

function credsArg(flag: string, credentials?: Credentials): string[] {
  return credentials ? [flag, `${credentials.username}:${credentials.password}`] : [];
}

/** Strips `docker://`; accepts `HOST/REPO:TAG` or `HOST/REPO@DIGEST`. */
function dockerRef(ref: string): string {
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

// ---------------------------------------------------------------------------------------------
// OCI layouts

interface Layout {
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

async function writeBlob(layout: Layout, bytes: Buffer): Promise<Digest> {
  const digest = sha256Digest(bytes);
  await writeFile(join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return digest;
}

async function tagEntry(layout: Layout, tag: string): Promise<LayoutEntry> {
  const entry = (await readIndex(layout)).manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!entry) throw new Error(`tag ${tag} not in layout ${layout.dir}`);
  return entry;
}

/** Adds (or replaces) a tagged entry in the layout's index.json. */
async function addTag(layout: Layout, tag: string, entry: Omit<LayoutEntry, 'annotations'>): Promise<void> {
  const index = await readIndex(layout);
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ ...entry, annotations: { [REF_NAME]: tag } });
  await writeFile(join(layout.dir, 'index.json'), JSON.stringify(index));
}

async function newLayout(name: string): Promise<Layout> {
  const dir = join(await scratch(name), 'layout');
  await umoci(['init', '--layout', dir]);
  return { dir };
}

/** Creates image `tag` (from scratch, or on top of `from`) with one random layer per size. */
async function buildImage(
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

const layoutCache = new Map<string, Promise<unknown>>();

/** Runs `build` once per key in this process; later callers get the same layout. */
function cached<T>(key: string, build: () => Promise<T>): Promise<T> {
  let hit = layoutCache.get(key) as Promise<T> | undefined;
  if (!hit) {
    hit = build();
    layoutCache.set(key, hit);
    hit.catch(() => layoutCache.delete(key));
  }
  return hit;
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

function uniqueBlobs(blobs: BlobRef[]): BlobRef[] {
  const seen = new Map<string, BlobRef>();
  for (const b of blobs) if (!seen.has(b.digest)) seen.set(b.digest, { digest: b.digest, size: b.size, mediaType: b.mediaType });
  return [...seen.values()];
}

/**
 * Pushes `layoutTag` of a layout to HOST/repository:tag with skopeo, then checks the registry serves
 * the layout's exact manifest bytes.
 */
async function push(target: RegistryTarget, layout: Layout, layoutTag: string, repository: string, tag: string): Promise<PushedImage> {
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

// ---------------------------------------------------------------------------------------------
// Fixtures

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

export const SBOM_MEDIA_TYPE = 'application/vnd.example.sbom.v1+json';
const COSIGN_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const COSIGN_SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosignproject.cosign/simplesigning.v1+json';

interface ArtifactLayer {
  mediaType: string;
  data: Buffer;
  annotations?: Record<string, string>;
}

export interface ArtifactOptions {
  repository: string;
  tag: string;
  /** Config media type; default `application/vnd.example.sbom.v1+json` (not an image config). */
  configMediaType?: string;
  /** Manifest `artifactType`; default = configMediaType. */
  artifactType?: string;
  config?: Buffer;
  layers?: ArtifactLayer[];
  annotations?: Record<string, string>;
}

/**
 * An OCI artifact: an image manifest whose config is not an image config. skopeo 1.9 copies it
 * unchanged (no conversion is needed), so it goes through the same push path as images.
 */
export async function pushArtifact(target: RegistryTarget, options: ArtifactOptions): Promise<PushedImage> {
  const configMediaType = options.configMediaType ?? SBOM_MEDIA_TYPE;
  const config = options.config ?? Buffer.from(JSON.stringify({ tool: 'ecr-backup-fixtures', kind: configMediaType }));
  const layers = options.layers ?? [
    {
      mediaType: 'application/spdx+json',
      data: Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: options.repository, packages: [] })),
    },
  ];
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: options.artifactType ?? configMediaType,
    config: { mediaType: configMediaType, digest: sha256Digest(config), size: config.byteLength },
    layers: layers.map((l) => ({
      mediaType: l.mediaType,
      digest: sha256Digest(l.data),
      size: l.data.byteLength,
      ...(l.annotations ? { annotations: l.annotations } : {}),
    })),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const key = `artifact|${createHash('sha256').update(bytes).digest('hex')}`;
  const layout = await cached(key, async () => {
    const layout = await newLayout('artifact');
    await writeBlob(layout, config);
    for (const l of layers) await writeBlob(layout, l.data);
    const digest = await writeBlob(layout, bytes);
    await addTag(layout, 'artifact', { mediaType: MediaType.OciManifest, digest, size: bytes.byteLength });
    return layout;
  });
  return push(target, layout, 'artifact', options.repository, options.tag);
}

/** The cosign tag scheme: `sha256-<hex>.sig` names the signature of image `sha256:<hex>`. */
export function signatureTag(signedDigest: string): string {
  return `${signedDigest.replace(':', '-')}.sig`;
}

/**
 * A cosign-style signature: tag `sha256-<hex>.sig` in `repository`, pointing at an artifact whose
 * layer is a simple-signing payload naming `signedDigest` (the signature itself is random bytes).
 */
export async function pushSignature(
  target: RegistryTarget,
  options: { repository: string; signedDigest: string; configMediaType?: string },
): Promise<PushedImage> {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${target.host}/${options.repository}` },
        image: { 'docker-manifest-digest': options.signedDigest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  return pushArtifact(target, {
    repository: options.repository,
    tag: signatureTag(options.signedDigest),
    configMediaType: options.configMediaType ?? COSIGN_SIGNATURE_ARTIFACT_TYPE,
    artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE,
    layers: [
      {
        mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
        data: payload,
        // Deterministic, so the same signed digest always gives the same signature manifest.
        annotations: {
          'dev.cosignproject.cosign/signature': createHash('sha512').update(`fixture-signature:${options.signedDigest}`).digest('base64'),
        },
      },
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP push (distribution API), for manifests skopeo would refuse or rewrite.

function authHeader(credentials?: Credentials): Record<string, string> {
  return credentials ? { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` } : {};
}

/** Monolithic blob upload (POST then PUT ?digest=); skipped when the registry already has it. */
async function pushBlobHttp(target: RegistryTarget, repository: string, data: Buffer): Promise<Digest> {
  const digest = sha256Digest(data);
  const base = `http://${target.host}/v2/${repository}`;
  const head = await fetch(`${base}/blobs/${digest}`, { method: 'HEAD', headers: authHeader(target.credentials) });
  if (head.ok) return digest;
  const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: authHeader(target.credentials) });
  const location = start.headers.get('location');
  if (start.status !== 202 || !location)
    throw new Error(`blob upload to ${repository} not started: HTTP ${start.status} ${await start.text()}`);
  const url = new URL(location, `http://${target.host}`);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, {
    method: 'PUT',
    headers: { ...authHeader(target.credentials), 'content-type': 'application/octet-stream', 'content-length': String(data.byteLength) },
    body: data,
  });
  if (put.status !== 201) throw new Error(`blob ${digest} upload to ${repository} failed: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

/** Uploads `blobs` then PUTs `manifest` bytes unchanged under `reference` (a tag or digest). */
export async function pushManifestHttp(
  target: RegistryTarget,
  options: { repository: string; reference: string; manifest: Buffer; mediaType: string; blobs?: Buffer[] },
): Promise<Digest> {
  for (const blob of options.blobs ?? []) await pushBlobHttp(target, options.repository, blob);
  const res = await fetch(`http://${target.host}/v2/${options.repository}/manifests/${options.reference}`, {
    method: 'PUT',
    headers: { ...authHeader(target.credentials), 'content-type': options.mediaType },
    body: options.manifest,
  });
  if (res.status !== 201)
    throw new Error(`manifest PUT ${options.repository}:${options.reference} failed: HTTP ${res.status} ${await res.text()}`);
  return sha256Digest(options.manifest);
}
