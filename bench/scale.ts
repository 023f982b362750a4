// Scale benchmark (`npm run bench:scale`): synthetic registries of small images over many
// repositories, pushed with the distribution API, backed up into moto S3 by the CLI's backup run
// (full, incremental, 1% changed), plus the workflow's sharded listing (core/engine/sharded-listing.ts:
// ECR listing via moto ECR, the unchanged split, settings on their cadence). Prints requests per image by kind and time per image.
//
//   BENCH_SCALE_SIZES=500,2000   images per registry (default 500,2000; 0 skips these rows)
//   BENCH_SCALE_TAGS=40          tags per repository (default 40: 200,000 images / 5,000 repositories)
//   BENCH_PRUNE_SIZES=10000      images of the synthetic directory stores pruned (bench/prune-scale.ts; 0 skips)
//   BENCH_PRUNE_S3_SIZES=1000    the same into moto S3 (slow: moto answers ~60 small requests/s here)
//
// Requests are counted in process: every AWS SDK request (S3, ECR) by a client middleware, every
// registry request by a counting proxy. Times are wall clock on this machine against moto; they
// show trends, not AWS latencies.
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateRepositoryCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { runBackup } from '../core/engine/backup.ts';
import { listShard, planShards, readShardOutcomes } from '../core/engine/sharded-listing.ts';
import { mapLimited } from '../core/limiter.ts';
import { ExecutionInput } from '../schema/contract.ts';
import { EcrEndpoint } from '../core/registry/ecr.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { createS3Client, S3ObjectStore } from '../core/store/s3.ts';
import { measurePrune } from './prune-scale.ts';

const { startRegistry } = await import('../test/harness/registry.ts');
const { startMoto, applyAwsEnv } = await import('../test/harness/moto.ts');
const { countSdkRequests, startCountingProxy } = await import('../test/harness/counting.ts');
const { pushSynthetic, pushSyntheticOrg } = await import('../test/harness/synthetic.ts');

const sizesOf = (value: string) =>
  value
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
const sizes = sizesOf(process.env.BENCH_SCALE_SIZES ?? '500,2000');
const pruneSizes = sizesOf(process.env.BENCH_PRUNE_SIZES ?? '10000');
const pruneS3Sizes = sizesOf(process.env.BENCH_PRUNE_S3_SIZES ?? '1000');
const tagsPerRepository = Number(process.env.BENCH_SCALE_TAGS ?? 40);

interface Row {
  images: number;
  run: string;
  seconds: number;
  perImage: Record<string, number>;
}
const rows: Row[] = [];
const per = (n: number, images: number) => Math.round((n / images) * 1000) / 1000;

const moto = await startMoto();
applyAwsEnv(moto.env);
try {
  for (const images of sizes) {
    const repositories = Math.max(1, Math.round(images / tagsPerRepository));
    const registry = await startRegistry();
    const proxy = await startCountingProxy(registry.host);
    try {
      const t0 = performance.now();
      const prefix = `s${images}`;
      const pushed = await pushSyntheticOrg(registry, { repositories, tagsPerRepository, concurrency: 8, prefix });
      process.stderr.write(
        `${pushed.length} images in ${repositories} repositories pushed in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      );
      const s3 = createS3Client();
      const s3Count = countSdkRequests(s3);
      const bucket = `scale-${images}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const store = () => new BackupStore(new S3ObjectStore({ bucket, prefix: 'cli', client: s3 }));
      const source = () => new RegistryEndpoint(proxy.url, { insecure: true });

      const measure = async (run: string, fn: () => Promise<unknown>) => {
        s3Count.reset();
        proxy.reset();
        const started = performance.now();
        await fn();
        const seconds = (performance.now() - started) / 1000;
        const registryTotal = proxy.total();
        rows.push({
          images: pushed.length,
          run,
          seconds,
          perImage: {
            'ms/image': Math.round((seconds * 1000) / pushed.length),
            s3: per(s3Count.total(), pushed.length),
            's3 GET': per(s3Count.counts.GetObject ?? 0, pushed.length),
            's3 HEAD': per(s3Count.counts.HeadObject ?? 0, pushed.length),
            's3 LIST': per(s3Count.counts.ListObjectsV2 ?? 0, pushed.length),
            's3 PUT': per((s3Count.counts.PutObject ?? 0) + (s3Count.counts.CreateMultipartUpload ?? 0), pushed.length),
            registry: per(registryTotal, pushed.length),
            'registry manifest GET': per(proxy.counts['GET manifest'] ?? 0, pushed.length),
            'registry manifest HEAD': per(proxy.counts['HEAD manifest'] ?? 0, pushed.length),
          },
        });
        process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
      };

      await measure('CLI full', () => runBackup({ source: source(), store: store(), imageConcurrency: 8, blobConcurrency: 16 }));
      await measure('CLI incremental', () => runBackup({ source: source(), store: store(), imageConcurrency: 8, blobConcurrency: 16 }));
      const changed = pushed.filter((_, i) => i % 100 === 0);
      for (const image of changed) await pushSynthetic(registry, image.repository, image.tag, `${image.repository}:${image.tag}:changed`);
      await measure('CLI 1% changed', () => runBackup({ source: source(), store: store(), imageConcurrency: 8, blobConcurrency: 16 }));

      // The workflow's listing: the same org mirrored into moto ECR (control plane), listed with
      // DescribeImages, split against the store's catalog, settings recorded for every repository.
      const ecrClient = new ECRClient({});
      const ecrCount = countSdkRequests(ecrClient);
      await mapLimited([...new Set(pushed.map((p) => p.repository))], 8, (name) =>
        ecrClient.send(new CreateRepositoryCommand({ repositoryName: name })),
      );
      await mapLimited(pushed, 8, (p) =>
        ecrClient.send(
          new PutImageCommand({
            repositoryName: p.repository,
            imageTag: p.tag,
            imageManifest: p.manifest.toString('utf8'),
            imageManifestMediaType: p.mediaType,
            imageDigest: p.digest,
          }),
        ),
      );
      const ecr = new EcrEndpoint({
        client: ecrClient,
        registryUrl: proxy.url,
        registry: { insecure: true },
        throttle: { ratePerSecond: 1000 },
      });
      const cliStore = () => new BackupStore(new S3ObjectStore({ bucket, prefix: 'cli', client: s3 }));
      let listingStore = () => new BackupStore(new S3ObjectStore({ bucket, prefix: 'wf', client: s3 }));
      const workflowStore = () => listingStore();
      // The sharded listing as the workflow runs it: plan, every shard (one after the other here; the
      // workflow runs 4 at once), merge's reads.
      const listing = async () => {
        const runId = `bench-${Date.now()}`;
        const store = workflowStore();
        const input = ExecutionInput.parse({ repositories: [`${prefix}/*`] });
        const plan = await planShards({ source: ecr, store, runId, input, within: ['**'], shardSize: 100 });
        for (const ref of plan.refs) {
          const shard = await store.runs.readShard(ref.shardKey);
          await listShard({ source: ecr, store, shard, format: 'oci', settingsCadenceMs: 7 * 24 * 3600 * 1000 });
        }
        return readShardOutcomes(store, runId, plan.refs);
      };
      const measureListing = async (run: string) => {
        ecrCount.reset();
        await measure(run, listing);
        rows.at(-1)!.perImage.ecr = per(ecrCount.total(), pushed.length);
        rows.at(-1)!.perImage['ecr/repository'] = per(ecrCount.total(), repositories);
        rows.at(-1)!.perImage['ms/1000 tags'] = Math.round((rows.at(-1)!.seconds * 1000 * 1000) / pushed.length);
        process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
      };
      await measureListing('workflow listing, empty store');
      await measureListing('workflow listing, again (settings within cadence)');
      // The CLI's store holds the same repositories (ECR has the original digests, the CLI store
      // the 1% changed ones): the listing against it is a daily run with 1% changed (its settings
      // were never read: the CLI's source is a plain registry).
      listingStore = cliStore;
      await measureListing('workflow listing, 1% changed');
    } finally {
      await proxy.stop();
      await registry.stop();
    }
  }
  for (const images of pruneS3Sizes) rows.push(...(await measurePrune(images, tagsPerRepository, 's3')));
  for (const images of pruneSizes) rows.push(...(await measurePrune(images, tagsPerRepository, 'dir')));
} finally {
  await moto.stop();
}

const kinds = [...new Set(rows.flatMap((r) => Object.keys(r.perImage)))];
const lines = [
  `| images | run | seconds | ${kinds.join(' | ')} |`,
  `|---:|---|---:|${kinds.map(() => '---:').join('|')}|`,
  ...rows.map((r) => `| ${r.images} | ${r.run} | ${r.seconds.toFixed(1)} | ${kinds.map((k) => r.perImage[k] ?? '').join(' | ')} |`),
];
process.stdout.write(
  `Requests per image by kind (${tagsPerRepository} tags per repository; moto S3/ECR, docker-registry on loopback)\n\n${lines.join('\n')}\n`,
);
