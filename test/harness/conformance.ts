// The behaviour every ImageRepository must have, whatever it is backed by (after go-containerregistry's
// `validate`): a registry, a directory store and an S3 store run this same suite. The copy engine relies
// on exactly these properties, so an implementation that passes here can be an end of any copy.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ImageEndpoint } from '../../core/model/endpoint.ts';
import { sha256Digest } from '../../core/model/digest.ts';
import { manifestFromBytes, MediaType, type Descriptor, type Manifest } from '../../core/model/manifest.ts';

export interface ConformanceTarget {
  name: string;
  /** A fresh, empty endpoint for each test. */
  open(): Promise<ImageEndpoint>;
}

function blob(size: number, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip'): { descriptor: Descriptor; bytes: Buffer } {
  const bytes = randomBytes(size);
  return { descriptor: { mediaType, digest: sha256Digest(bytes), size }, bytes };
}

function imageManifest(config: Descriptor, layers: Descriptor[]): Manifest {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers }, null, 3));
  return manifestFromBytes(bytes, { mediaType: MediaType.OciManifest });
}

function indexOf(children: Manifest[]): Manifest {
  const manifests = children.map((child, i) => ({
    ...child.descriptor,
    platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
  }));
  return manifestFromBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })), {
    mediaType: MediaType.OciIndex,
  });
}

async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A body that sends `head` and then fails, as a connection reset mid-transfer does. */
function brokenBody(head: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) {
        this.destroy(new Error('connection reset (injected)'));
        return;
      }
      sent = true;
      this.push(head);
    },
  });
}

/** Pushes a complete image: config and layers, then the manifest under `tag`. */
async function pushImage(endpoint: ImageEndpoint, repository: string, tag: string) {
  const repo = endpoint.repository(repository);
  const config = blob(300, MediaType.OciImageConfig);
  const layers = [blob(70_000), blob(1_000)];
  for (const part of [config, ...layers]) await repo.putBlob(part.descriptor, Readable.from([part.bytes]));
  const manifest = imageManifest(
    config.descriptor,
    layers.map((layer) => layer.descriptor),
  );
  await endpoint.ensureRepository?.(repository);
  await repo.putManifest(manifest, { tag });
  return { repo, config, layers, manifest };
}

export function describeImageRepositoryConformance(target: ConformanceTarget): void {
  describe(`ImageRepository conformance: ${target.name}`, () => {
    it('a blob put with matching bytes is present and reads back byte for byte', async () => {
      const repo = (await target.open()).repository('conformance/blobs');
      const layer = blob(200_000);
      expect(await repo.hasBlob(layer.descriptor)).toBe(false);
      await repo.putBlob(layer.descriptor, Readable.from([layer.bytes]));
      expect(await repo.hasBlob(layer.descriptor)).toBe(true);
      expect((await readStream(await repo.openBlob(layer.descriptor))).equals(layer.bytes)).toBe(true);
    });

    it('a blob whose bytes do not match its digest is refused and nothing is committed', async () => {
      const repo = (await target.open()).repository('conformance/liar');
      const claimed = blob(4_096);
      await expect(repo.putBlob(claimed.descriptor, Readable.from([randomBytes(4_096)]))).rejects.toThrow(/digest|mismatch|invalid/i);
      expect(await repo.hasBlob(claimed.descriptor)).toBe(false);
    });

    it('a blob whose body breaks mid-transfer is refused and nothing is committed', async () => {
      const repo = (await target.open()).repository('conformance/reset');
      const layer = blob(64_000);
      await expect(repo.putBlob(layer.descriptor, brokenBody(layer.bytes.subarray(0, 10_000)))).rejects.toThrow();
      expect(await repo.hasBlob(layer.descriptor)).toBe(false);
    });

    it('a manifest put after its blobs is present, listed under its tag, and reads back as the exact bytes', async () => {
      const endpoint = await target.open();
      const { repo, manifest } = await pushImage(endpoint, 'conformance/image', 'v1');
      expect(await repo.hasManifest(manifest.descriptor)).toBe(true);
      const byTag = await repo.getManifest({ tag: 'v1' });
      const byDigest = await repo.getManifest({ digest: manifest.descriptor.digest });
      for (const read of [byTag, byDigest]) {
        expect(read.bytes.equals(manifest.bytes)).toBe(true);
        expect(read.descriptor).toMatchObject({
          digest: manifest.descriptor.digest,
          mediaType: MediaType.OciManifest,
          size: manifest.bytes.length,
        });
      }
      expect(await endpoint.listRepositories()).toContain('conformance/image');
      const listed = (await repo.listImages()).find((image) => image.tag === 'v1');
      expect(listed).toBeDefined();
      // A registry's tags/list carries no digests; a listing that does must carry the right one.
      expect(listed?.digest ?? manifest.descriptor.digest).toBe(manifest.descriptor.digest);
    });

    it('a manifest whose layers are missing is refused (present means complete)', async () => {
      const endpoint = await target.open();
      const repo = endpoint.repository('conformance/incomplete');
      const config = blob(200, MediaType.OciImageConfig);
      await repo.putBlob(config.descriptor, Readable.from([config.bytes]));
      const manifest = imageManifest(config.descriptor, [blob(5_000).descriptor]);
      await endpoint.ensureRepository?.('conformance/incomplete');
      await expect(repo.putManifest(manifest, { tag: 'broken' })).rejects.toThrow();
      expect(await repo.hasManifest(manifest.descriptor)).toBe(false);
    });

    it('an index put after its children keeps its digest, and its children resolve by digest', async () => {
      const endpoint = await target.open();
      const amd64 = await pushImage(endpoint, 'conformance/multi', 'amd64');
      const arm64 = await pushImage(endpoint, 'conformance/multi', 'arm64');
      const index = indexOf([amd64.manifest, arm64.manifest]);
      await amd64.repo.putManifest(index, { tag: 'latest' });
      expect(await amd64.repo.hasManifest(index.descriptor)).toBe(true);
      const read = await amd64.repo.getManifest({ tag: 'latest' });
      expect(read.descriptor.digest).toBe(index.descriptor.digest);
      expect(read.bytes.equals(index.bytes)).toBe(true);
      const child = await amd64.repo.getManifest({ digest: arm64.manifest.descriptor.digest, mediaType: MediaType.OciManifest });
      expect(child.bytes.equals(arm64.manifest.bytes)).toBe(true);
    });

    it('an unknown tag and an unknown digest are not found, not empty', async () => {
      const endpoint = await target.open();
      const { repo } = await pushImage(endpoint, 'conformance/missing', 'present');
      await expect(repo.getManifest({ tag: 'absent' })).rejects.toThrow(/not found|unknown|absent/i);
      const ghost = blob(10);
      expect(await repo.hasManifest({ ...ghost.descriptor, mediaType: MediaType.OciManifest })).toBe(false);
      expect(await repo.hasBlob(ghost.descriptor)).toBe(false);
    });
  });
}
