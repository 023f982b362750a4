// The fixtures are what they claim to be, checked against the registry with independent clients
// (skopeo inspect, plain fetch), and the lying proxy really lies.
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../core/model/manifest.ts';
import { sha256Digest } from '../core/model/digest.ts';
import {
  COSIGN_SIMPLESIGNING_MEDIA_TYPE,
  SBOM_MEDIA_TYPE,
  pushArtifact,
  pushSignature,
  signatureTag,
} from './harness/fixture-artifacts.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectConfigDigest, inspectRaw } from './harness/fixture-tools.ts';
import { pushImage, pushManyLayerImage, pushMultiArchIndex, pushRandomImages, pushSharedBaseTags } from './harness/fixtures.ts';
import { pushManifestHttp } from './harness/http-push.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { startLyingProxy } from './harness/lying-proxy.ts';
import { tempDir } from './harness/process.ts';
import { useRegistry } from './harness/services.ts';

const MiB = 1024 * 1024;
const registry = useRegistry({ username: 'fixture', password: 'fixture-pass' });
let auth: Record<string, string>;

async function getBlob(base: string, repository: string, digest: string): Promise<Response> {
  return fetch(`${base}/v2/${repository}/blobs/${digest}`, { headers: auth });
}

async function parsedManifest(reference: string): Promise<{
  config?: { mediaType: string; digest: string };
  layers: Array<{ digest: string; mediaType: string; size: number }>;
  artifactType?: string;
  manifests?: Array<{ platform?: { os: string; architecture: string } }>;
}> {
  return JSON.parse((await inspectRaw(reference, registry.credentials)).bytes.toString('utf8'));
}

/** Every blob the fixture lists is in the registry with the listed size. */
async function expectBlobsPresent(image: PushedImage): Promise<void> {
  for (const blob of image.blobs) {
    const res = await fetch(`${registry.url}/v2/${image.repository}/blobs/${blob.digest}`, { method: 'HEAD', headers: auth });
    expect(res.status, blob.digest).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBe(blob.size);
  }
}

beforeAll(async () => {
  auth = { authorization: `Basic ${Buffer.from('fixture:fixture-pass').toString('base64')}` };
});

afterAll(async () => {
  await cleanupFixtures();
});

describe('fixtures', () => {
  let small: PushedImage;

  it('pushes a small single-platform image whose digest the registry confirms', async () => {
    small = await pushImage(registry, { repository: 'fixtures/small', tag: 'v1' });
    const raw = await inspectRaw(small.reference, registry.credentials);
    expect(raw.digest).toBe(small.digest);
    expect(small.mediaType).toBe(MediaType.OciManifest);
    expect(small.children).toEqual([]);
    expect(small.blobs).toHaveLength(2); // config + one layer
    expect(small.blobs[1]!.size).toBeGreaterThan(64 * 1024); // random data does not compress
    expect(await inspectConfigDigest(small.reference, registry.credentials)).toBe(small.configDigest);
    await expectBlobsPresent(small);
  });

  it('reuses a cached layout: same parameters give the same digest, a new variant a new one', async () => {
    const again = await pushImage(registry, { repository: 'fixtures/small-copy', tag: 'v1' });
    expect(again.digest).toBe(small.digest);
    const other = await pushImage(registry, { repository: 'fixtures/small-copy', tag: 'v2', variant: 'other' });
    expect(other.digest).not.toBe(small.digest);
  });

  it('pushes a multi-arch OCI index with linux/amd64 and linux/arm64 children', async () => {
    const index = await pushMultiArchIndex(registry, { repository: 'fixtures/multi', tag: 'v1' });
    expect(index.mediaType).toBe(MediaType.OciIndex);
    expect((await inspectRaw(index.reference, registry.credentials)).digest).toBe(index.digest);
    const parsed = await parsedManifest(index.reference);
    expect(parsed.manifests?.map((m) => `${m.platform?.os}/${m.platform?.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    expect(index.children).toHaveLength(2);
    expect(index.manifests).toHaveLength(3);
    for (const child of index.children) {
      const raw = await inspectRaw(`${registry.host}/fixtures/multi@${child.digest}`, registry.credentials);
      expect(raw.digest).toBe(child.digest);
      expect(raw.mediaType).toBe(MediaType.OciManifest);
    }
    const amd = await inspectConfigDigest(index.reference, registry.credentials, { os: 'linux', architecture: 'amd64' });
    const arm = await inspectConfigDigest(index.reference, registry.credentials, { os: 'linux', architecture: 'arm64' });
    expect(amd).not.toBe(arm);
    expect(index.blobs).toHaveLength(4); // two configs, two layers
    await expectBlobsPresent(index);
  });

  it('pushes tags that share one base layer, stored once', async () => {
    const shared = await pushSharedBaseTags(registry, {
      repository: 'fixtures/shared',
      tags: 3,
      baseSize: 20 * MiB,
      uniqueSize: 256 * 1024,
    });
    expect(shared.images.map((i) => i.tag)).toEqual(['v1', 'v2', 'v3']);
    expect(shared.base.size).toBeGreaterThan(20 * MiB);
    const layerLists = await Promise.all(shared.images.map(async (i) => (await parsedManifest(i.reference)).layers.map((l) => l.digest)));
    for (const layers of layerLists) {
      expect(layers).toHaveLength(2);
      expect(layers[0]).toBe(shared.base.digest);
    }
    expect(new Set(layerLists.map((l) => l[1])).size).toBe(3);
    expect(new Set(shared.images.map((i) => i.digest)).size).toBe(3);
    // 1 base + 3 unique layers + 3 configs; base counted once in blobBytes.
    expect(shared.blobs).toHaveLength(7);
    expect(shared.blobBytes).toBeLessThan(shared.base.size + 3 * 300 * 1024);
    const stored = await readdir(join(registry.dir, 'data/docker/registry/v2/blobs/sha256', shared.base.digest.slice(7, 9)));
    expect(stored).toContain(shared.base.digest.slice(7));
  });

  it('pushes an image with 40 small layers', async () => {
    const many = await pushManyLayerImage(registry, { repository: 'fixtures/many', layers: 40, layerSize: 4096 });
    expect((await parsedManifest(many.reference)).layers).toHaveLength(40);
    expect(many.blobs).toHaveLength(41);
  });

  it('pushes unrelated random images of a given size', async () => {
    const images = await pushRandomImages(registry, { count: 2, size: 2 * MiB, repository: (i) => `fixtures/random-${i}` });
    expect(new Set(images.map((i) => i.digest)).size).toBe(2);
    for (const image of images) {
      expect(image.repository).toMatch(/^fixtures\/random-\d$/);
      expect(image.blobBytes).toBeGreaterThan(2 * MiB);
      expect(image.blobBytes).toBeLessThan(2 * MiB + 4096);
    }
  });

  it('pushes an OCI artifact with a non-image config and a cosign-style .sig tag', async () => {
    const sbom = await pushArtifact(registry, { repository: 'fixtures/small', tag: 'sbom' });
    const parsed = await parsedManifest(sbom.reference);
    expect(parsed.config?.mediaType).toBe(SBOM_MEDIA_TYPE);
    expect(parsed.artifactType).toBe(SBOM_MEDIA_TYPE);
    expect(sbom.configMediaType).toBe(SBOM_MEDIA_TYPE);
    expect((await inspectRaw(sbom.reference, registry.credentials)).digest).toBe(sbom.digest);

    const sig = await pushSignature(registry, { repository: 'fixtures/small', signedDigest: small.digest });
    expect(sig.tag).toBe(`sha256-${small.digest.slice(7)}.sig`);
    expect(sig.tag).toBe(signatureTag(small.digest));
    const tags = await fetch(`${registry.url}/v2/fixtures/small/tags/list`, { headers: auth }).then(
      (r) => r.json() as Promise<{ tags: string[] }>,
    );
    expect(tags.tags.sort()).toEqual(['sbom', sig.tag, 'v1'].sort());
    const sigManifest = await parsedManifest(sig.reference);
    expect(sigManifest.config?.mediaType).not.toBe(MediaType.OciImageConfig);
    expect(sigManifest.layers[0]!.mediaType).toBe(COSIGN_SIMPLESIGNING_MEDIA_TYPE);
    const payload = (await (await getBlob(registry.url, 'fixtures/small', sigManifest.layers[0]!.digest)).json()) as {
      critical: { image: { 'docker-manifest-digest': string } };
    };
    expect(payload.critical.image['docker-manifest-digest']).toBe(small.digest);
  });

  it('pushes raw manifests over plain HTTP byte for byte', async () => {
    const config = Buffer.from('{"hello":"world"}');
    const manifest = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: 'application/vnd.example.thing.v1+json', digest: sha256Digest(config), size: config.length },
          layers: [],
        },
        null,
        3,
      ),
    );
    const digest = await pushManifestHttp(registry, {
      repository: 'fixtures/raw',
      reference: 'pretty',
      manifest,
      mediaType: MediaType.OciManifest,
      blobs: [config],
    });
    expect((await inspectRaw(`${registry.host}/fixtures/raw:pretty`, registry.credentials)).digest).toBe(digest);
  });
});

describe('lying proxy', () => {
  let image: PushedImage;
  beforeAll(async () => {
    image = await pushImage(registry, { repository: 'fixtures/lied', tag: 'v1', layerSizes: [300 * 1024] });
  });

  const sha = (bytes: ArrayBuffer) => `sha256:${createHash('sha256').update(Buffer.from(bytes)).digest('hex')}`;

  it('flips bytes of a chosen blob, keeps length and headers, passes other blobs intact', async () => {
    const layer = image.blobs[1]!;
    const config = image.blobs[0]!;
    const proxy = await startLyingProxy({ upstream: registry.url, digests: [layer.digest] });
    try {
      const lied = await getBlob(proxy.url, image.repository, layer.digest);
      expect(lied.status).toBe(200);
      expect(lied.headers.get('docker-content-digest')).toBe(layer.digest);
      const bytes = await lied.arrayBuffer();
      expect(bytes.byteLength).toBe(layer.size);
      expect(sha(bytes)).not.toBe(layer.digest);
      const honest = await getBlob(proxy.url, image.repository, config.digest);
      expect(sha(await honest.arrayBuffer())).toBe(config.digest);
      expect(proxy.lies).toEqual([{ path: `/v2/${image.repository}/blobs/${layer.digest}`, digest: layer.digest, mode: 'flip' }]);
      // The manifest passes through, so an independent client sees the same digest...
      expect((await inspectRaw(`${proxy.host}/${image.repository}:v1`, registry.credentials)).digest).toBe(image.digest);
      // ...and skopeo refuses the lying blob.
      const dir = await tempDir('lied');
      const copy = await execa(
        'skopeo',
        [
          '--insecure-policy',
          '--tmpdir',
          dir,
          'copy',
          '-q',
          '--src-tls-verify=false',
          '--src-creds',
          'fixture:fixture-pass',
          `docker://${proxy.host}/${image.repository}:v1`,
          `oci:${join(dir, 'out')}:x`,
        ],
        { reject: false },
      );
      await rm(dir, { recursive: true, force: true });
      expect(copy.exitCode).not.toBe(0);
      expect(copy.stderr).toMatch(/digest/i);
    } finally {
      await proxy.stop();
    }
  });

  it('lies about every blob of a chosen repository, and truncates or aborts in the other modes', async () => {
    const proxy = await startLyingProxy({ upstream: registry.host, repositories: [image.repository], mode: 'truncate' });
    try {
      const layer = image.blobs[1]!;
      const short = await getBlob(proxy.url, image.repository, layer.digest);
      expect((await short.arrayBuffer()).byteLength).toBe(Math.floor(layer.size / 2));
      proxy.mode = 'flip';
      const config = image.blobs[0]!;
      const flipped = await getBlob(proxy.url, image.repository, config.digest);
      const bytes = await flipped.arrayBuffer();
      expect(bytes.byteLength).toBe(config.size);
      expect(sha(bytes)).not.toBe(config.digest);
      // Other repositories pass through.
      const other = (await pushImage(registry, { repository: 'fixtures/small', tag: 'v1' })).blobs[1]!;
      const honest = await getBlob(proxy.url, 'fixtures/small', other.digest);
      expect(sha(await honest.arrayBuffer())).toBe(other.digest);
      proxy.mode = 'abort';
      await expect(getBlob(proxy.url, image.repository, layer.digest).then((r) => r.arrayBuffer())).rejects.toThrow();
      expect(proxy.lies.map((l) => l.mode)).toEqual(['truncate', 'flip', 'abort']);
    } finally {
      await proxy.stop();
    }
  });

  it('forwards pushes (upload Locations point at the proxy)', async () => {
    const proxy = await startLyingProxy({ upstream: registry.url });
    try {
      const image2 = await pushImage(
        { host: proxy.host, credentials: registry.credentials },
        { repository: 'fixtures/via-proxy', tag: 'v1', variant: 'via-proxy' },
      );
      expect((await inspectRaw(`${registry.host}/fixtures/via-proxy:v1`, registry.credentials)).digest).toBe(image2.digest);
      expect(proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'))).toBe(true);
    } finally {
      await proxy.stop();
    }
  });
});
