// Foreign (non-distributable) layers, as in Windows images: the registry accepts the manifest without
// holding the layer's bytes. A backup keeps the descriptor and skips the bytes; verify reports the
// layer as external (not missing); stats and prune leave it out; restore pushes the manifest byte for
// byte, so the digest is unchanged. Real registries (configured to accept such layers), directory and
// S3 (moto) stores.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import { sha256Digest } from '../core/model/digest.ts';
import { MediaType } from '../core/model/manifest.ts';
import type { PruneReport } from '../core/store/prune.ts';
import type { StoreStats } from '../core/store/stats.ts';
import type { VerifyReport } from '../core/store/verify.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { pushManifestHttp } from './harness/http-push.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { tempDir } from './harness/process.ts';

const BUCKET = 'foreign';
/** Windows base layers are large; the store must hold none of these bytes. */
const FOREIGN_SIZE = 300_000_000;

const { source, target, moto } = useServices({
  source: registryService({ allowForeignLayers: true }),
  target: registryService({ allowForeignLayers: true }),
  moto: motoService({ awsEnv: true, buckets: [BUCKET] }),
});
const images: { repository: string; digest: string; foreign: string }[] = [];

/** Pushes config + one real layer, and a manifest that also lists a foreign layer of `foreignType`. */
async function pushForeignImage(repository: string, manifestType: string, foreignType: string, layerType: string, configType: string) {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'windows', rootfs: { type: 'layers', diff_ids: [] }, repository }),
  );
  const layer = randomBytes(20_000);
  const foreign = sha256Digest(randomBytes(32));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: configType, size: config.byteLength, digest: sha256Digest(config) },
      layers: [
        {
          mediaType: foreignType,
          size: FOREIGN_SIZE,
          digest: foreign,
          urls: [`https://mcr.microsoft.com/v2/windows/servercore/blobs/${foreign}`],
        },
        { mediaType: layerType, size: layer.byteLength, digest: sha256Digest(layer) },
      ],
    }),
  );
  const digest = await pushManifestHttp(source, {
    repository,
    reference: 'ltsc2022',
    manifest,
    mediaType: manifestType,
    blobs: [config, layer],
  });
  images.push({ repository, digest, foreign });
}

beforeAll(async () => {
  await pushForeignImage(
    'win/docker',
    MediaType.DockerManifest,
    'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
    'application/vnd.docker.image.rootfs.diff.tar.gzip',
    MediaType.DockerImageConfig,
  );
  await pushForeignImage(
    'win/oci',
    MediaType.OciManifest,
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.v1.tar+gzip',
    MediaType.OciImageConfig,
  );
}, 120_000);

describe('foreign (non-distributable) layers', () => {
  it.each([
    ['directory', async () => tempDir('foreign-store')],
    ['s3', async () => `s3://${BUCKET}/store`],
  ])(
    '%s store: backed up without their bytes, verify reports them external, stats leaves them out, restore is digest-exact',
    async (kind, makeStore) => {
      const store = await makeStore();
      const env = moto.env;
      const backup = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--repositories', 'win/**'], { env });
      expect(backup.exitCode, backup.stderr).toBe(0);
      expect(backup.json.results.map((i) => i.status)).toEqual(['copied', 'copied']);

      const verify = await runCliJson<VerifyReport>(['verify', '--from', store], { env });
      expect(verify.exitCode, verify.stdout).toBe(0);
      expect(verify.json.problems).toEqual([]);
      expect(verify.json.externalLayers.map((l) => l.digest).sort()).toEqual(images.map((i) => i.foreign).sort());
      const text = await runCli(['verify', '--from', store], { env });
      expect(text.stdout).toContain('2 external (foreign) layer(s)');

      const stats = await runCliJson<StoreStats>(['stats', '--from', store], { env });
      expect(stats.exitCode, stats.stderr).toBe(0);
      expect(stats.json.totals.storedBytes).toBeLessThan(100_000);
      expect(stats.json.totals.logicalBytes).toBeLessThan(100_000);
      expect(stats.json.totals.unreadableImages).toBe(0);

      // prune has nothing of them to delete and nothing to complain about.
      const prune = await runCliJson<PruneReport>(['prune', '--from', store, '--keep-last', '1', '--grace', '0s'], { env });
      expect(prune.exitCode, prune.stderr).toBe(0);
      expect(prune.json.blobs.deleted).toBe(0);

      const prefix = `restored-${kind}/`;
      const restore = await runCliJson(['restore', '--from', store, '--registry', target.url, '--repository-prefix', prefix], { env });
      expect(restore.exitCode, restore.stderr).toBe(0);
      for (const image of images) {
        const res = await fetch(`${target.url}/v2/${prefix}${image.repository}/manifests/ltsc2022`, {
          headers: { accept: [MediaType.DockerManifest, MediaType.OciManifest].join(', ') },
        });
        expect(res.status).toBe(200);
        expect(sha256Digest(Buffer.from(await res.arrayBuffer()))).toBe(image.digest);
      }
    },
    120_000,
  );
});
