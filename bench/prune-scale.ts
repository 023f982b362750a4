// Prune rows of the scale benchmark (bench/scale.ts): a synthetic store written straight into moto S3
// or a directory (test/harness/synthetic-store.ts: per image two values of a tag one day apart, each a manifest, a
// config and its own layer, plus one base layer all share; no registry), then `keep-last 1`, which
// drops one value per image and sweeps its three blobs. Counts every S3 request by kind, and times a
// listing pass (objects listed per second) and the sweep (objects deleted per second). The directory
// store's requests are counted as S3 would send them (harness/counting.ts: a LIST per 1,000 keys, one
// DeleteObject per key: the directory backend has no batch delete); moto on these 2 shared cores
// answers ~60 small PUTs or GETs a second, so the 10,000-image row uses the directory store.
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { listBlobs, listRecords } from '../core/store/prune-scan.ts';
import { pruneStore } from '../core/store/prune.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { createS3Client, S3ObjectStore } from '../core/store/s3.ts';
import { openStore } from '../core/store/url.ts';

const { countSdkRequests, countingObjectStore } = await import('../test/harness/counting.ts');
const { tempDir } = await import('../test/harness/process.ts');
const { writeSyntheticStore } = await import('../test/harness/synthetic-store.ts');

export interface PruneRow {
  images: number;
  run: string;
  seconds: number;
  perImage: Record<string, number>;
}

const per = (n: number, images: number) => Math.round((n / images) * 1000) / 1000;

export async function measurePrune(images: number, tagsPerRepository: number, backend: 's3' | 'dir'): Promise<PruneRow[]> {
  let objects: ObjectStore;
  let count: ReturnType<typeof countSdkRequests>;
  if (backend === 's3') {
    const s3 = createS3Client();
    const bucket = `prune-scale-${images}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    objects = new S3ObjectStore({ bucket, prefix: 'store', client: s3 });
    count = countSdkRequests(s3);
  } else {
    ({ store: objects, counter: count } = countingObjectStore(openStore(await tempDir(`prune-scale-${images}`))));
  }
  const t0 = performance.now();
  await writeSyntheticStore(objects, { images, tagsPerRepository, concurrency: 64 });
  process.stderr.write(
    `synthetic ${backend} store of ${images} images (2 values each) written in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );

  const rows: PruneRow[] = [];
  const row = (run: string, seconds: number, extra: Record<string, number>) => {
    rows.push({
      images,
      run,
      seconds,
      perImage: {
        'ms/image': Math.round((seconds * 1000) / images),
        s3: per(count.total(), images),
        's3 GET': per(count.counts.GetObject ?? 0, images),
        's3 HEAD': per(count.counts.HeadObject ?? 0, images),
        's3 LIST': per(count.counts.ListObjectsV2 ?? 0, images),
        's3 DELETE': per((count.counts.DeleteObjects ?? 0) + (count.counts.DeleteObject ?? 0), images),
        ...extra,
      },
    });
    process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
  };

  count.reset();
  let started = performance.now();
  const [records, blobs] = await Promise.all([listRecords(objects), listBlobs(objects)]);
  let seconds = (performance.now() - started) / 1000;
  row(`prune (${backend}): one listing pass (catalog + blobs)`, seconds, {
    'objects listed/s': Math.round((records.length + blobs.length) / seconds),
  });

  count.reset();
  let sweepStarted = 0;
  started = performance.now();
  const report = await pruneStore(objects, {
    keepLast: 1,
    graceMs: 0,
    concurrency: 32,
    onProgress: (m) => {
      if (sweepStarted === 0 && m.startsWith('deleting') && m.includes('blob')) sweepStarted = performance.now();
    },
  });
  const ended = performance.now();
  seconds = (ended - started) / 1000;
  if (report.sweep !== 'done' || report.blobs.deleted !== 3 * images) throw new Error(`unexpected prune: ${JSON.stringify(report.blobs)}`);
  // The sweep's time includes the final conflict-check listing.
  row(`prune (${backend}) keep-last 1 (drops 1 value/image)`, seconds, {
    'blobs deleted/s (sweep)': Math.round(report.blobs.deleted / ((ended - sweepStarted) / 1000)),
  });
  return rows;
}
