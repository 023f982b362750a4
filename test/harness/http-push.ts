// Plain HTTP push (distribution API), for manifests skopeo would refuse or rewrite.
import { sha256Digest, type Digest } from '../../core/model/digest.ts';
import type { Credentials, RegistryTarget } from './fixture-types.ts';

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
