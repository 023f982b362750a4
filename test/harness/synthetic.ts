// Tiny synthetic images pushed with the distribution API (plain fetch, no auth, no skopeo): a config and one small layer
// each, unique per `seed`. Fast enough to fill a registry with thousands of tags (tests and bench/).
import { createHash } from 'node:crypto';
import type { RegistryTarget } from './fixture-types.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface SyntheticImage {
  repository: string;
  tag: string;
  digest: string;
  manifest: Buffer;
  mediaType: string;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The bytes of a synthetic image (config, layer, manifest) for `seed`, without pushing it. */
function syntheticImage(seed: string): { manifest: Buffer; blobs: Buffer[] } {
  const layer = Buffer.from(`layer ${seed}\n`);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
      config: { Labels: { seed } },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.byteLength }],
    }),
  );
  return { manifest, blobs: [config, layer] };
}

/** Pushes one synthetic image under `repository:tag`. */
export async function pushSynthetic(
  target: RegistryTarget,
  repository: string,
  tag: string,
  seed = `${repository}:${tag}`,
): Promise<SyntheticImage> {
  const { manifest, blobs } = syntheticImage(seed);
  const base = `http://${target.host}/v2/${repository}`;
  for (const blob of blobs) {
    const digest = sha256(blob);
    if ((await fetch(`${base}/blobs/${digest}`, { method: 'HEAD' })).ok) continue;
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw new Error(`blob upload to ${repository} not started: HTTP ${start.status}`);
    const url = new URL(location, `http://${target.host}`);
    url.searchParams.set('digest', digest);
    const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob });
    if (put.status !== 201) throw new Error(`blob upload to ${repository} failed: HTTP ${put.status}`);
  }
  const res = await fetch(`${base}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  if (res.status !== 201) throw new Error(`manifest PUT ${repository}:${tag} failed: HTTP ${res.status} ${await res.text()}`);
  const digest = sha256(manifest);
  return { repository, tag, digest, manifest, mediaType: OCI_MANIFEST };
}

/** `repositories` x `tagsPerRepository` synthetic images (`repo-<r>:t<i>`), `concurrency` pushes at a time. */
export async function pushSyntheticOrg(
  target: RegistryTarget,
  options: { repositories: number; tagsPerRepository: number; concurrency?: number; prefix?: string },
): Promise<SyntheticImage[]> {
  const jobs: [string, string][] = [];
  for (let r = 0; r < options.repositories; r++) {
    for (let t = 0; t < options.tagsPerRepository; t++)
      jobs.push([`${options.prefix ?? 'org'}/repo-${String(r).padStart(4, '0')}`, `t${t}`]);
  }
  const pushed: SyntheticImage[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < jobs.length; i = next++) pushed[i] = await pushSynthetic(target, jobs[i]![0], jobs[i]![1]);
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return pushed;
}
