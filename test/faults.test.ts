// Fault injection between the CLI and the registries and between the CLI and S3 (moto): seeded
// proxies (test/harness/lying-proxy.ts) fault the first request to every object with a transient
// fault (resets before and during bodies, truncated bodies, bodies that trickle then stall,
// 500/502/503, 429 with Retry-After, responses lost after a successful write). Backup and restore must still complete with exit 0,
// every image digest-exact, the store verifying clean. FAULT_TRIALS (default 1) and FAULT_SEED
// scale the runs; the tallies are printed for the closing note.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import { ENV } from '../schema/environment.ts';
import { MANIFEST_ACCEPT } from '../core/model/manifest.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { openStore } from '../core/store/url.ts';
import { verifyStore } from '../core/store/verify.ts';
import { runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushFaultImages, type FaultImage } from './harness/fault-images.ts';
import { BODY_FAULTS, startLyingProxy, TRANSIENT_FAULTS, type InterceptAction, type LyingProxy } from './harness/lying-proxy.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { rng } from './harness/seeded.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'faults';
const TRIALS = Number(process.env.FAULT_TRIALS ?? 1);
const SEED = Number(process.env.FAULT_SEED ?? 1);

const { source, target, moto } = useServices({
  source: registryService(),
  target: registryService(),
  moto: motoService({ awsEnv: true, buckets: [BUCKET] }),
});
const images: FaultImage[] = [];
let baseDigest: string;

const tally = { scenarios: 0, images: 0, imagesLost: 0, falseExit0: 0, faults: {} as Record<string, number> };

/**
 * One transient fault on the first request to each object (method + path). Body faults only on
 * GETs; no truncated bodies from S3 (S3 never sends one, and a short body with a matching length is
 * indistinguishable from a short object there).
 */
function firstRequestFaults(random: () => number, options: { truncate: boolean }) {
  // (One fault per upload session per repository, not per blob: the PATCH URLs do not name the blob.)
  const seen = new Set<string>();
  return ({ method, path }: { method: string; path: string }): InterceptAction | undefined => {
    // An upload session's URL is new on every attempt: the session is one object per repository.
    const key = `${method} ${path.replace(/\/blobs\/uploads\/.*$/, '/blobs/uploads/')}`;
    if (seen.has(key)) return undefined;
    seen.add(key);
    const kinds = TRANSIENT_FAULTS.filter(
      (k) => (method === 'GET' || !BODY_FAULTS.includes(k)) && (options.truncate || k !== 'truncate-body'),
    );
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    tally.faults[kind] = (tally.faults[kind] ?? 0) + 1;
    return kind;
  };
}

beforeAll(async () => {
  const pushed = await pushFaultImages(source, {
    prefix: 'f',
    baseSize: 512 * KiB,
    uniqueSize: 32 * KiB,
    bigSize: 20 * MiB,
    variant: 'faults',
  });
  images.push(...pushed.images);
  baseDigest = pushed.baseDigest;
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
  // The figures the closing note quotes.
  console.log(`fault-injection tally: ${JSON.stringify(tally)}`);
});

const repositories = () => [...new Set(images.map((i) => i.repository))];

async function digestAt(url: string, repository: string, tag: string): Promise<string | null> {
  const res = await fetch(`${url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
  return res.headers.get('docker-content-digest');
}

describe('one transient fault on the first request to every object', () => {
  it(
    `backs up and restores everything with exit 0, digest-exact (${TRIALS} trial(s), seed ${SEED})`,
    async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        const random = rng(SEED + trial);
        const store = `s3://${BUCKET}/trial-${SEED + trial}`;
        const proxies: LyingProxy[] = await Promise.all([
          startLyingProxy({ upstream: source.url, intercept: firstRequestFaults(random, { truncate: true }) }),
          startLyingProxy({ upstream: moto.url, intercept: firstRequestFaults(random, { truncate: false }) }),
          startLyingProxy({ upstream: target.url, intercept: firstRequestFaults(random, { truncate: true }) }),
        ]);
        const [sourceProxy, s3Proxy, targetProxy] = proxies as [LyingProxy, LyingProxy, LyingProxy];
        try {
          // A slow body is abandoned after 2 s of silence (not the default 60 s) and then resumed.
          const env = { ...moto.env, AWS_ENDPOINT_URL: s3Proxy.url, [ENV.IDLE_TIMEOUT_MS]: '2000' };
          tally.scenarios++;
          tally.images += images.length;
          const backup = await runCliJson<RunReport>(
            ['backup', '--registry', sourceProxy.url, '--to', store, '--repositories', ...repositories()],
            { env },
          );
          const failedBackup = backup.json?.counts?.failed ?? images.length;
          if (backup.exitCode === 0 && failedBackup > 0) tally.falseExit0++;
          expect(backup.exitCode, `${backup.stderr}\n${JSON.stringify(backup.json?.failures)}`).toBe(0);
          expect(backup.json.counts).toMatchObject({ images: images.length, failed: 0 });

          const prefix = `t${SEED + trial}`;
          const restore = await runCliJson<RunReport>(
            ['restore', '--from', store, '--registry', targetProxy.url, '--repository-prefix', `${prefix}/`],
            { env },
          );
          if (restore.exitCode === 0 && (restore.json?.counts?.failed ?? 1) > 0) tally.falseExit0++;
          for (const { repository, tag, image } of images) {
            if ((await digestAt(target.url, `${prefix}/${repository}`, tag)) !== image.digest) tally.imagesLost++;
          }
          expect(restore.exitCode, `${restore.stderr}\n${JSON.stringify(restore.json?.failures)}`).toBe(0);
          for (const { repository, tag, image } of images)
            expect(await digestAt(target.url, `${prefix}/${repository}`, tag), `${repository}:${tag}`).toBe(image.digest);
          expect((await verifyStore(new BackupStore(openStore(store)))).problems).toEqual([]);
        } finally {
          await Promise.all(proxies.map((p) => p.stop()));
        }
      }
      expect(tally).toMatchObject({ imagesLost: 0, falseExit0: 0 });
      expect(Object.keys(tally.faults).sort()).toEqual([...TRANSIENT_FAULTS].sort());
    },
    TRIALS * 170_000,
  );
});

describe('one upload per blob per store within a run', () => {
  it('a base layer shared by two repositories is written to the store once, even when both are copied at the same time', async () => {
    const s3Proxy = await startLyingProxy({ upstream: moto.url });
    try {
      const store = `s3://${BUCKET}/dedup`;
      const backup = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--repositories', 'f/a', 'f/b'], {
        env: { ...moto.env, AWS_ENDPOINT_URL: s3Proxy.url },
      });
      expect(backup.exitCode, backup.stderr).toBe(0);
      for (const { image } of images.slice(0, 2)) expect(image.blobs.map((b) => b.digest)).toContain(baseDigest);
      const writes = s3Proxy.requests.filter(
        (r) => r.method === 'PUT' && r.path === `/${BUCKET}/dedup/blobs/sha256/${baseDigest.slice('sha256:'.length)}`,
      );
      expect(writes).toHaveLength(1);
      expect(backup.json.counts).toMatchObject({ images: 2, copied: 2 });
    } finally {
      await s3Proxy.stop();
    }
  });
});
