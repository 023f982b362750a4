// OCI artifacts and cosign signatures pushed next to images (SBOMs, `sha256-<hex>.sig` tags).
import { createHash } from 'node:crypto';
import { MediaType } from '../../core/model/manifest.ts';
import { sha256Digest } from '../../core/model/digest.ts';
import type { PushedImage, RegistryTarget } from './fixture-types.ts';
import { cached } from './fixture-scratch.ts';
import { addTag, newLayout, push, writeBlob } from './oci-layout.ts';

export const SBOM_MEDIA_TYPE = 'application/vnd.example.sbom.v1+json';
const COSIGN_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const COSIGN_SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosignproject.cosign/simplesigning.v1+json';

interface ArtifactLayer {
  mediaType: string;
  data: Buffer;
  annotations?: Record<string, string>;
}

export interface ArtifactOptions {
  repository: string;
  tag: string;
  /** Config media type; default `application/vnd.example.sbom.v1+json` (not an image config). */
  configMediaType?: string;
  /** Manifest `artifactType`; default = configMediaType. */
  artifactType?: string;
  config?: Buffer;
  layers?: ArtifactLayer[];
  annotations?: Record<string, string>;
}

/**
 * An OCI artifact: an image manifest whose config is not an image config. skopeo 1.9 copies it
 * unchanged (no conversion is needed), so it goes through the same push path as images.
 */
export async function pushArtifact(target: RegistryTarget, options: ArtifactOptions): Promise<PushedImage> {
  const configMediaType = options.configMediaType ?? SBOM_MEDIA_TYPE;
  const config = options.config ?? Buffer.from(JSON.stringify({ tool: 'ecr-backup-fixtures', kind: configMediaType }));
  const layers = options.layers ?? [
    {
      mediaType: 'application/spdx+json',
      data: Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: options.repository, packages: [] })),
    },
  ];
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: options.artifactType ?? configMediaType,
    config: { mediaType: configMediaType, digest: sha256Digest(config), size: config.byteLength },
    layers: layers.map((l) => ({
      mediaType: l.mediaType,
      digest: sha256Digest(l.data),
      size: l.data.byteLength,
      ...(l.annotations ? { annotations: l.annotations } : {}),
    })),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const key = `artifact|${createHash('sha256').update(bytes).digest('hex')}`;
  const layout = await cached(key, async () => {
    const layout = await newLayout('artifact');
    await writeBlob(layout, config);
    for (const l of layers) await writeBlob(layout, l.data);
    const digest = await writeBlob(layout, bytes);
    await addTag(layout, 'artifact', { mediaType: MediaType.OciManifest, digest, size: bytes.byteLength });
    return layout;
  });
  return push(target, layout, 'artifact', options.repository, options.tag);
}

/** The cosign tag scheme: `sha256-<hex>.sig` names the signature of image `sha256:<hex>`. */
export function signatureTag(signedDigest: string): string {
  return `${signedDigest.replace(':', '-')}.sig`;
}

/**
 * A cosign-style signature: tag `sha256-<hex>.sig` in `repository`, pointing at an artifact whose
 * layer is a simple-signing payload naming `signedDigest` (the signature itself is random bytes).
 */
export async function pushSignature(
  target: RegistryTarget,
  options: { repository: string; signedDigest: string; configMediaType?: string },
): Promise<PushedImage> {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${target.host}/${options.repository}` },
        image: { 'docker-manifest-digest': options.signedDigest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  return pushArtifact(target, {
    repository: options.repository,
    tag: signatureTag(options.signedDigest),
    configMediaType: options.configMediaType ?? COSIGN_SIGNATURE_ARTIFACT_TYPE,
    artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE,
    layers: [
      {
        mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE,
        data: payload,
        // Deterministic, so the same signed digest always gives the same signature manifest.
        annotations: {
          'dev.cosignproject.cosign/signature': createHash('sha512').update(`fixture-signature:${options.signedDigest}`).digest('base64'),
        },
      },
    ],
  });
}
