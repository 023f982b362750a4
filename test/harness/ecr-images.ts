// An image pushed to the registry that stands in for ECR's data plane, registered in moto's ECR
// control plane under its real digest (moto computes digests wrongly: see shared facts).
import { type ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import type { Credentials } from '../../core/registry/credentials.ts';
import { inspectRaw } from './fixture-tools.ts';
import type { PushedImage } from './fixture-types.ts';
import { pushImage } from './fixtures.ts';
import type { TestRegistry } from './registry.ts';

/** Registers an image just pushed to ECR's data plane (pushImage, pushMultiArchIndex) in moto's ECR; returns it. */
export async function inEcr(ecr: ECRClient, image: Promise<PushedImage>, auth?: Credentials): Promise<PushedImage> {
  const pushed = await image;
  await registerInEcr(ecr, pushed.repository, pushed.tag, pushed.reference, auth);
  return pushed;
}

export async function registerInEcr(ecr: ECRClient, repository: string, tag: string, reference: string, auth?: Credentials): Promise<void> {
  const manifest = await inspectRaw(reference, auth);
  await ecr.send(
    new PutImageCommand({
      repositoryName: repository,
      imageTag: tag,
      imageManifest: manifest.bytes.toString('utf8'),
      imageManifestMediaType: manifest.mediaType,
      imageDigest: manifest.digest,
    }),
  );
}

/** Pushes a small image per `[key, repository, tag]` to ECR's data plane and registers it in moto's ECR; returns them by key. */
export async function pushEcrImages(
  ecr: ECRClient,
  registry: TestRegistry,
  images: readonly (readonly [key: string, repository: string, tag: string])[],
  variant: string,
): Promise<Record<string, PushedImage>> {
  const pushed: Record<string, PushedImage> = {};
  for (const [key, repository, tag] of images)
    pushed[key] = await inEcr(ecr, pushImage(registry, { repository, tag, variant: `${variant}-${key}` }), registry.credentials);
  return pushed;
}
