// The OCI registry client moving bytes through Debian's docker-registry: pushes and pulls byte for
// byte (skopeo checks what we pushed), catalog paging, chunked uploads and cross-repository mounts.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DigestMismatchError } from '../core/model/digest.ts';
import { MediaType } from '../core/model/manifest.ts';
import { RegistryNotFoundError } from '../core/registry/errors.ts';
import { blob, manifestOf, pushImage, skopeoRaw } from './harness/oci-content.ts';
import { closeAll, endpoint } from './harness/registry-client.ts';
import { useRegistry } from './harness/services.ts';
import { recordingProxy } from './harness/scripted-server.ts';

const plain = useRegistry();

afterAll(async () => {
  await closeAll();
});

describe('RegistryEndpoint against docker-registry', () => {
  it('pushes an OCI image and an index byte for byte, as skopeo sees them', async () => {
    const e = endpoint(plain.url);
    const amd = await pushImage(e, 'push/app');
    const arm = await pushImage(e, 'push/app');
    const index = manifestOf({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { ...amd.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm.manifest.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    });
    const repo = e.repository('push/app');
    await repo.putManifest(amd.manifest, { tag: 'amd' });
    await repo.putManifest(index, { tag: 'multi' });

    expect(await skopeoRaw(plain.host, 'push/app:multi')).toEqual(index.bytes);
    expect(await skopeoRaw(plain.host, 'push/app:amd')).toEqual(amd.manifest.bytes);
    expect(await skopeoRaw(plain.host, `push/app@${arm.manifest.descriptor.digest}`)).toEqual(arm.manifest.bytes);

    const byTag = await repo.getManifest({ tag: 'multi' });
    expect(byTag.bytes).toEqual(index.bytes);
    expect(byTag.descriptor).toEqual(index.descriptor);
    const byDigest = await repo.getManifest({ digest: amd.manifest.descriptor.digest });
    expect(byDigest.descriptor).toEqual(amd.manifest.descriptor);
    expect(await repo.hasManifest(index.descriptor)).toBe(true);
    expect(await repo.hasManifest(blob(randomBytes(10)).descriptor)).toBe(false);
    const layer = amd.blobs[2]!;
    expect(await repo.hasBlob(layer.descriptor)).toBe(true);
    expect(Buffer.concat(await (await repo.openBlob(layer.descriptor)).toArray())).toEqual(layer.bytes);
    expect((await repo.listImages()).map((l) => l.tag).sort()).toEqual(['amd', 'multi']);
  });

  it('pages through the catalog with Link headers (n=2 against the real registry)', async () => {
    const proxy = await recordingProxy(plain.url);
    const e = endpoint(proxy.url, { pageSize: 2 });
    for (const name of ['paged/a', 'paged/b', 'paged/c', 'paged/d', 'paged/e']) await pushImage(e, name, 'v1');
    const repositories = await e.listRepositories();
    expect(repositories.filter((r) => r.startsWith('paged/'))).toEqual(['paged/a', 'paged/b', 'paged/c', 'paged/d', 'paged/e']);
    expect(new Set(repositories).size).toBe(repositories.length);
    const pages = proxy.requests.filter((r) => r.path.startsWith('/v2/_catalog'));
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.every((r) => r.status === 200 && r.path.includes('n=2'))).toBe(true);
    await expect(e.repository('paged/missing').listImages()).rejects.toThrow(RegistryNotFoundError);
  });

  it('uploads a blob larger than the monolithic threshold in bounded PATCH chunks, and commits nothing on a bad body', async () => {
    const proxy = await recordingProxy(plain.url);
    const e = endpoint(proxy.url, { monolithicMaxBytes: 1024 * 1024, chunkBytes: 3 * 1024 * 1024 });
    const big = blob(randomBytes(9 * 1024 * 1024 + 123));
    // Fed in odd-sized pieces so re-chunking is exercised.
    const pieces = Array.from({ length: Math.ceil(big.bytes.length / 700_001) }, (_, i) =>
      big.bytes.subarray(i * 700_001, (i + 1) * 700_001),
    );
    await e.repository('chunked/app').putBlob(big.descriptor, Readable.from(pieces));

    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(4);
    expect(patches.map((r) => r.headers['content-range'])).toEqual([
      '0-3145727',
      '3145728-6291455',
      '6291456-9437183',
      `9437184-${big.bytes.length - 1}`,
    ]);
    const fetched = await fetch(`${plain.url}/v2/chunked/app/blobs/${big.descriptor.digest}`);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(big.bytes)).toBe(true); // (toEqual on 9 MiB is very slow)

    const liar = blob(randomBytes(2 * 1024 * 1024));
    const other = randomBytes(liar.bytes.length);
    await expect(e.repository('chunked/app').putBlob(liar.descriptor, Readable.from([other]))).rejects.toThrow(DigestMismatchError);
    await expect(e.repository('chunked/app').putBlob(liar.descriptor, Readable.from([other.subarray(0, 100)]))).rejects.toThrow(
      DigestMismatchError,
    );
    expect(await e.repository('chunked/app').hasBlob(liar.descriptor)).toBe(false);
    expect(proxy.requests.filter((r) => r.method === 'DELETE').length).toBe(2); // the sessions were cancelled
  });

  it('mounts a blob from another repository it has seen (registry answers 201) instead of uploading', async () => {
    const proxy = await recordingProxy(plain.url);
    const e = endpoint(proxy.url);
    const layer = blob(randomBytes(50_000));
    await e.repository('mount/a').putBlob(layer.descriptor, Readable.from([layer.bytes]));

    expect(await e.repository('mount/b').mountBlob(layer.descriptor)).toBe(true);

    const mount = proxy.requests.find((r) => r.path.startsWith('/v2/mount/b/blobs/uploads/'));
    expect(mount?.method).toBe('POST');
    expect(new URL(mount!.path, proxy.url).searchParams.get('from')).toBe('mount/a');
    expect(mount?.status).toBe(201);
    expect(proxy.requests.some((r) => r.path.startsWith('/v2/mount/b/') && (r.method === 'PUT' || r.method === 'PATCH'))).toBe(false);
    expect((await fetch(`${plain.url}/v2/mount/b/blobs/${layer.descriptor.digest}`, { method: 'HEAD' })).status).toBe(200);

    // Nothing to mount from: no request, no mount.
    expect(await e.repository('mount/d').mountBlob(blob(randomBytes(10)).descriptor)).toBe(false);
  });
});
