// Hand-built OCI content for registry and store tests: random blobs, image configs, manifests kept
// byte for byte, and pushing an image through any endpoint; skopeo reads it back independently.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { sha256Digest } from '../../core/model/digest.ts';
import { manifestFromBytes, MediaType, type Descriptor, type Manifest } from '../../core/model/manifest.ts';
import type { ImageEndpoint } from '../../core/model/endpoint.ts';

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export function blob(
  bytes: Buffer = randomBytes(64 + Math.floor(Math.random() * 4096)),
  mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip',
): Blob {
  return { descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length }, bytes };
}

function configBlob(): Blob {
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') };
  return blob(Buffer.from(JSON.stringify(config)), MediaType.OciImageConfig);
}

export function manifestOf(json: unknown): Manifest {
  return manifestFromBytes(Buffer.from(JSON.stringify(json, null, 3))); // odd indent: bytes must survive as given
}

function imageManifest(config: Blob, layers: Blob[]): Manifest {
  return manifestOf({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: config.descriptor,
    layers: layers.map((l) => l.descriptor),
  });
}

/** Pushes a config and two small random layers plus their manifest; returns all of it. */
export async function pushImage(e: ImageEndpoint, repository: string, tag?: string): Promise<{ manifest: Manifest; blobs: Blob[] }> {
  const repo = e.repository(repository);
  const blobs = [configBlob(), blob(randomBytes(1500)), blob(randomBytes(70_000))];
  for (const b of blobs) await repo.putBlob(b.descriptor, Readable.from([b.bytes]));
  const manifest = imageManifest(blobs[0]!, blobs.slice(1));
  await repo.putManifest(manifest, tag === undefined ? undefined : { tag });
  return { manifest, blobs };
}

export async function skopeoRaw(host: string, reference: string, creds?: string): Promise<Buffer> {
  const args = [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(creds ? ['--creds', creds] : ['--no-creds']),
    `docker://${host}/${reference}`,
  ];
  const { stdout } = await execa('skopeo', args, { encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(stdout);
}
