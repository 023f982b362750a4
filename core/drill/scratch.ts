// Deleting what a restore drill pushed into its scratch prefix: an OCI registry through the
// distribution API (DELETE of each manifest by digest; the CNCF registry needs `delete: enabled`),
// ECR through BatchDeleteImage and then DeleteRepository (the drill created the scratch repositories).
import { BatchDeleteImageCommand, DeleteRepositoryCommand } from '@aws-sdk/client-ecr';
import type { ImageEndpoint } from '../model/endpoint.ts';
import { childManifests, isIndex } from '../model/manifest.ts';
import { EcrEndpoint } from '../registry/ecr.ts';
import { discard } from '../registry/http.ts';
import { RegistryEndpoint } from '../registry/registry.ts';

/** Deletes one restored image (an index with its child manifests). */
export async function deleteScratchImage(endpoint: ImageEndpoint, repository: string, digest: string): Promise<void> {
  if (endpoint instanceof EcrEndpoint) {
    const out = await endpoint.client.send(
      new BatchDeleteImageCommand({ repositoryName: repository, registryId: endpoint.registryId, imageIds: [{ imageDigest: digest }] }),
    );
    const failure = out.failures?.find((f) => f.failureCode !== 'ImageNotFound');
    if (failure) throw new Error(`${repository}@${digest}: ${failure.failureCode}: ${failure.failureReason}`);
    return;
  }
  if (!(endpoint instanceof RegistryEndpoint)) throw new Error(`${endpoint.description}: cannot delete scratch images there`);
  const manifest = await endpoint.repository(repository).getManifest({ digest });
  const digests = [digest, ...(isIndex(manifest) ? childManifests(manifest).map((c) => c.digest) : [])];
  for (const d of digests) {
    const res = await endpoint.attempt(
      { method: 'DELETE', url: endpoint.url(`/v2/${repository}/manifests/${d}`) },
      [`repository:${repository}:delete`],
      `${endpoint.description} ${repository}@${d}: delete`,
      [202, 200, 404],
    );
    await discard(res);
  }
}

/** ECR: removes the emptied scratch repository. A registry has no repository deletion: nothing to do. */
export async function deleteScratchRepository(endpoint: ImageEndpoint, repository: string): Promise<void> {
  if (!(endpoint instanceof EcrEndpoint)) return;
  try {
    await endpoint.client.send(new DeleteRepositoryCommand({ repositoryName: repository, registryId: endpoint.registryId, force: true }));
  } catch (error) {
    if ((error as { name?: string }).name !== 'RepositoryNotFoundException') throw error;
  }
}
