// Deleting what a restore drill pushed into its scratch prefix, through the endpoint's optional
// deleteImage/deleteRepository capabilities (core/model/endpoint.ts): an OCI registry deletes each
// manifest by digest, ECR deletes images and then the scratch repositories the drill created.
import type { ImageEndpoint } from '../model/endpoint.ts';

/** Deletes one restored image (an index with its child manifests). */
export async function deleteScratchImage(endpoint: ImageEndpoint, repository: string, digest: string): Promise<void> {
  if (!endpoint.deleteImage) throw new Error(`${endpoint.description}: cannot delete scratch images there`);
  await endpoint.deleteImage(repository, digest);
}

/** Removes the emptied scratch repository where the endpoint has repositories to delete (ECR); a registry has none. */
export async function deleteScratchRepository(endpoint: ImageEndpoint, repository: string): Promise<void> {
  await endpoint.deleteRepository?.(repository);
}
