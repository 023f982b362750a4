// The ECR endpoint: moto for the control plane, docker-registry with moto's token for the data plane,
// and scripted ECR clients for what moto does not do (pagination, token expiry).
import {
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  PutImageCommand,
} from '@aws-sdk/client-ecr';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EcrAuthorization, EcrEndpoint } from '../core/registry/ecr.ts';
import { RegistryNotFoundError } from '../core/registry/errors.ts';
import { skopeoRegistry } from '../core/archive/skopeo.ts';
import { deleteScratchImage, deleteScratchRepository } from '../core/drill/scratch.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { pushImage, skopeoRaw } from './harness/oci-content.ts';
import { closeAll, closeLater, ECR_PASSWORD, ECR_USER } from './harness/registry-client.ts';

const { secured, moto } = useServices({
  secured: registryService({ username: ECR_USER, password: ECR_PASSWORD }),
  moto: motoService({ awsEnv: true }),
});

afterAll(async () => {
  await closeAll();
  await Promise.allSettled([secured?.stop(), moto?.stop()]);
});

describe('EcrEndpoint', () => {
  it('lists repositories and images through moto and moves bytes through the registry with the ECR token', async () => {
    const ecr = new EcrEndpoint({ region: 'us-east-1', registryUrl: secured.url });
    closeLater(() => ecr.close());
    await ecr.ensureRepository('team/app');
    await ecr.ensureRepository('team/app'); // already exists: fine
    expect(await ecr.listRepositories()).toContain('team/app');

    // Data plane: credentials come from moto's GetAuthorizationToken (AWS / 123456789012-auth-token).
    const { manifest } = await pushImage(ecr, 'team/app', 'v1');
    const untagged = await pushImage(ecr, 'team/app');
    // Control plane: moto has no registry behind it, so register the images there too (digest passed
    // explicitly: moto computes it wrongly).
    for (const [image, tags] of [
      [manifest, ['v1', 'latest']],
      [untagged.manifest, []],
    ] as const) {
      for (const imageTag of tags.length ? tags : [undefined]) {
        await ecr.client.send(
          new PutImageCommand({
            repositoryName: 'team/app',
            imageManifest: image.bytes.toString('utf8'),
            imageManifestMediaType: image.descriptor.mediaType,
            imageDigest: image.descriptor.digest,
            ...(imageTag ? { imageTag } : {}),
          }),
        );
      }
    }

    const listings = await ecr.repository('team/app').listImages();
    const tagged = listings.filter((l) => l.tag).sort((a, b) => a.tag!.localeCompare(b.tag!));
    expect(tagged.map((l) => [l.tag, l.digest])).toEqual([
      ['latest', manifest.descriptor.digest],
      ['v1', manifest.descriptor.digest],
    ]);
    expect(tagged.every((l) => typeof l.sizeBytes === 'number' && !Number.isNaN(Date.parse(l.time!)))).toBe(true);
    expect(listings.filter((l) => !l.tag).map((l) => l.digest)).toEqual([untagged.manifest.descriptor.digest]);

    const fetched = await ecr.repository('team/app').getManifest({ tag: 'v1' });
    expect(fetched.bytes).toEqual(manifest.bytes);
    expect(await skopeoRaw(secured.host, 'team/app:v1', `${ECR_USER}:${ECR_PASSWORD}`)).toEqual(manifest.bytes);
    await expect(ecr.repository('team/missing').listImages()).rejects.toThrow(RegistryNotFoundError);
  });

  it("cleans up a drill's scratch images and repositories in ECR, and tells skopeo where its registry is", async () => {
    const ecr = new EcrEndpoint({ region: 'us-east-1', registryUrl: secured.url });
    closeLater(() => ecr.close());
    await ecr.ensureRepository('scratch/app');
    const { manifest } = await pushImage(ecr, 'scratch/app', 'v1');
    await ecr.client.send(
      new PutImageCommand({
        repositoryName: 'scratch/app',
        imageManifest: manifest.bytes.toString('utf8'),
        imageManifestMediaType: manifest.descriptor.mediaType,
        imageDigest: manifest.descriptor.digest,
        imageTag: 'v1',
      }),
    );
    await deleteScratchImage(ecr, 'scratch/app', manifest.descriptor.digest);
    expect(await ecr.repository('scratch/app').listImages()).toEqual([]);
    await deleteScratchImage(ecr, 'scratch/app', manifest.descriptor.digest); // already gone: no error
    await deleteScratchRepository(ecr, 'scratch/app');
    expect(await ecr.listRepositories()).not.toContain('scratch/app');
    await deleteScratchRepository(ecr, 'scratch/app'); // already gone: no error
    // skopeo reaches ECR's registry API with the token's credentials; plain http only on loopback.
    expect(await skopeoRegistry(ecr)).toEqual({
      host: secured.host,
      tlsVerify: false,
      credentials: { username: ECR_USER, password: ECR_PASSWORD },
    });
  });

  it('pages DescribeRepositories and DescribeImages (mocked ECR client: moto ignores pagination)', async () => {
    const seen: { command: string; nextToken?: string }[] = [];
    // An ECRClient whose send is scripted: the SDK paginators accept only ECRClient instances.
    const client = Object.assign(new ECRClient({ region: 'us-east-1' }), {
      async send(command: { input: { nextToken?: string } }) {
        seen.push({ command: command.constructor.name, nextToken: command.input.nextToken });
        const page = Number(command.input.nextToken ?? 0);
        if (command instanceof DescribeRepositoriesCommand) {
          return { repositories: [{ repositoryName: `repo${page}` }], nextToken: page < 2 ? String(page + 1) : undefined };
        }
        if (command instanceof DescribeImagesCommand) {
          const pages = [
            [{ imageDigest: `sha256:${'a'.repeat(64)}`, imageTags: ['v1', 'latest'], imageSizeInBytes: 10, imagePushedAt: new Date(0) }],
            [{ imageDigest: `sha256:${'b'.repeat(64)}`, imageSizeInBytes: 20 }],
          ];
          return { imageDetails: pages[page], nextToken: page < 1 ? String(page + 1) : undefined };
        }
        throw new Error(`unexpected ${command.constructor.name}`);
      },
    }) as unknown as ECRClient;
    const ecr = new EcrEndpoint({ client, registryId: '210987654321' });
    expect(await ecr.listRepositories()).toEqual(['repo0', 'repo1', 'repo2']);
    expect(await ecr.repository('team/app').listImages()).toEqual([
      { tag: 'v1', digest: `sha256:${'a'.repeat(64)}`, sizeBytes: 10, time: '1970-01-01T00:00:00.000Z' },
      { tag: 'latest', digest: `sha256:${'a'.repeat(64)}`, sizeBytes: 10, time: '1970-01-01T00:00:00.000Z' },
      { digest: `sha256:${'b'.repeat(64)}`, sizeBytes: 20 },
    ]);
    expect(seen.map((s) => s.nextToken)).toEqual([undefined, '1', '2', undefined, '1']);
    expect(ecr.description).toBe('ecr://210987654321/us-east-1');
  });

  it('renews the authorization token before it expires, once for concurrent callers (mocked ECR client)', async () => {
    let calls = 0;
    const lifetimeMs = 12 * 60 * 60 * 1000;
    // An ECRClient whose send is scripted: the SDK paginators accept only ECRClient instances.
    const client = Object.assign(new ECRClient({ region: 'us-east-1' }), {
      async send(command: unknown) {
        if (!(command instanceof GetAuthorizationTokenCommand)) throw new Error('unexpected command');
        calls += 1;
        await new Promise((r) => setTimeout(r, 20));
        return {
          authorizationData: [
            {
              authorizationToken: Buffer.from(`AWS:token-${calls}`).toString('base64'),
              proxyEndpoint: 'https://1.dkr.ecr.us-east-1.amazonaws.com',
              expiresAt: new Date(Date.now() + lifetimeMs),
            },
          ],
        };
      },
    }) as unknown as ECRClient;
    const provider = new EcrAuthorization(client, undefined, 30 * 60 * 1000);
    const [a, b] = await Promise.all([provider.get(), provider.get()]);
    expect([a.password, b.password, calls]).toEqual(['token-1', 'token-1', 1]);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 11 * 60 * 60 * 1000); // 1 h left: still good
      expect((await provider.get()).password).toBe('token-1');
      vi.setSystemTime(Date.now() + 40 * 60 * 1000); // 20 min left: inside the 30-minute margin
      const [c, d] = await Promise.all([provider.get(), provider.get()]);
      expect([c.password, d.password, calls]).toEqual(['token-2', 'token-2', 2]);
    } finally {
      vi.useRealTimers();
    }
    // Without registryUrl the registry API is the token's proxyEndpoint.
    expect((await new EcrEndpoint({ client }).registry()).description).toBe('docker://1.dkr.ecr.us-east-1.amazonaws.com');
  });
});
