// A backup store written directly (no registry, no copy engine): tiny synthetic images (syntheticImage:
// a config, one layer, an OCI manifest) plus one base layer every image shares, and a tag record per
// value. Cheap enough to build a 10,000-image store for prune tests and bench/scale.ts.
import { mapLimited } from '../../core/limiter.ts';
import { sha256Digest as sha256 } from '../../core/model/digest.ts';
import { blobKey, compactTime, tagRecordKey, type CatalogRecord } from '../../core/store/layout.ts';
import { writeJson, type ObjectStore } from '../../core/store/object-store.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DAY_MS = 86_400_000;
const BASE_LAYER = Buffer.from('shared base layer\n');

export interface SyntheticStoreOptions {
  /** Tags (current images). */
  images: number;
  tagsPerRepository: number;
  /** Values each tag has had, one day apart, the last one current (default 2). */
  valuesPerTag?: number;
  /** Time of the first value (default 2026-01-01). */
  start?: Date;
  concurrency?: number;
  /** Repository names are `<prefix>/r<n>` (default 'syn'). */
  prefix?: string;
}

export interface SyntheticValue {
  repository: string;
  tag: string;
  digest: string;
  /** Every blob of the value: manifest, config, its own layer (the shared base layer is not listed). */
  blobs: string[];
  time: Date;
}

/** The bytes of one value: config, its own layer and the shared base layer, and the manifest naming them. */
function image(seed: string): { manifest: Buffer; config: Buffer; layer: Buffer } {
  const layer = Buffer.from(`layer ${seed}\n`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { seed } } }));
  const descriptor = (mediaType: string, b: Buffer) => ({ mediaType, digest: sha256(b), size: b.byteLength });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [
        descriptor('application/vnd.oci.image.layer.v1.tar', BASE_LAYER),
        descriptor('application/vnd.oci.image.layer.v1.tar', layer),
      ],
    }),
  );
  return { manifest, config, layer };
}

/** Writes the store (blobs before manifests before records, like a backup) and returns every value, oldest first per tag. */
export async function writeSyntheticStore(objects: ObjectStore, options: SyntheticStoreOptions): Promise<SyntheticValue[]> {
  const values = options.valuesPerTag ?? 2;
  const start = (options.start ?? new Date('2026-01-01T00:00:00Z')).getTime();
  const prefix = options.prefix ?? 'syn';
  await objects.put(blobKey(sha256(BASE_LAYER)), BASE_LAYER, { expected: { digest: sha256(BASE_LAYER), size: BASE_LAYER.byteLength } });
  const plan: { repository: string; tag: string; value: number }[] = [];
  for (let i = 0; i < options.images; i++) {
    const repository = `${prefix}/r${Math.floor(i / options.tagsPerRepository)}`;
    for (let v = 0; v < values; v++) plan.push({ repository, tag: `t${i % options.tagsPerRepository}`, value: v });
  }
  return mapLimited(plan, options.concurrency ?? 32, async ({ repository, tag, value }): Promise<SyntheticValue> => {
    const { manifest, config, layer } = image(`${repository}:${tag}:${value}`);
    for (const blob of [config, layer, manifest]) {
      await objects.put(blobKey(sha256(blob)), blob, { expected: { digest: sha256(blob), size: blob.byteLength } });
    }
    const digest = sha256(manifest);
    const time = new Date(start + value * DAY_MS);
    const record: CatalogRecord = {
      repository,
      tag,
      digest,
      mediaType: OCI_MANIFEST,
      manifestSize: manifest.byteLength,
      imageBytes: manifest.byteLength + config.byteLength + layer.byteLength + BASE_LAYER.byteLength,
      backedUpAt: time.toISOString(),
    };
    await writeJson(objects, tagRecordKey(repository, tag, compactTime(time), digest), record);
    return { repository, tag, digest, blobs: [digest, sha256(config), sha256(layer)], time };
  });
}
