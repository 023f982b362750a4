// kill -9 of the CLI at seeded random points of a backup and of a restore. The point is a request
// (the nth one, counted in a clean reference run) that a proxy in front of the registry or of S3
// (moto) holds unanswered, or completes upstream without answering (a write whose reply is lost);
// the CLI is killed while it waits. After a killed backup: verify is clean (nothing looks complete
// that is not), every image the store lists restores digest-exact, a re-run exits 0 and the store
// then holds the same blobs and tags as a clean run's. After a killed restore: every tag the target
// has is digest-exact, and a re-run restores everything digest-exact. KILL_TRIALS (default 1 of each)
// and FAULT_SEED scale and replay the trials; the tallies are printed for the closing note.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import { copyImages } from '../core/engine/run.ts';
import { MANIFEST_ACCEPT } from '../core/model/manifest.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { BLOBS_PREFIX } from '../core/store/layout.ts';
import { openStore } from '../core/store/url.ts';
import { verifyStore } from '../core/store/verify.ts';
import { runCliJson, startCli } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushFaultImages, type FaultImage } from './harness/fault-images.ts';
import { startLyingProxy, type InterceptAction, type LyingProxy } from './harness/lying-proxy.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { between, rng } from './harness/seeded.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'kill';
const CLEAN = `s3://${BUCKET}/clean`;
const TRIALS = Number(process.env.KILL_TRIALS ?? 1);
const SEED = Number(process.env.FAULT_SEED ?? 1);

const { source, target, moto } = useServices({
  source: registryService(),
  target: registryService(),
  moto: motoService({ awsEnv: true, buckets: [BUCKET] }),
});
const images: FaultImage[] = [];
/** Requests a clean run sends: backup to the registry and to S3, restore to the target registry. */
const reference = { source: 0, s3: 0, target: 0 };
const tally = { scenarios: 0, kills: 0, images: 0, imagesLost: 0, falseExit0: 0, killedAt: {} as Record<string, number> };

const anonymous = (url: string) => new RegistryEndpoint(url, { credentials: { get: async () => undefined } });
const repositories = () => [...new Set(images.map((i) => i.repository))];

beforeAll(async () => {
  const pushed = await pushFaultImages(source, {
    prefix: 'k',
    baseSize: 256 * KiB,
    uniqueSize: 16 * KiB,
    bigSize: 9 * MiB,
    variant: 'kill',
  });
  images.push(...pushed.images);

  // The clean reference runs, through counting proxies.
  const [sourceProxy, s3Proxy, targetProxy] = await Promise.all([
    startLyingProxy({ upstream: source.url }),
    startLyingProxy({ upstream: moto.url }),
    startLyingProxy({ upstream: target.url }),
  ]);
  try {
    const env = { ...moto.env, AWS_ENDPOINT_URL: s3Proxy.url };
    const backup = await runCliJson<RunReport>(
      ['backup', '--registry', sourceProxy.url, '--to', CLEAN, '--repositories', ...repositories()],
      {
        env,
      },
    );
    expect(backup.exitCode, backup.stderr).toBe(0);
    reference.source = sourceProxy.requests.length;
    reference.s3 = s3Proxy.requests.length;
    // The restore's reference runs in-process (the CLI's start costs seconds on a busy machine): a
    // restore lists the store, not the target, so the target sees the same requests either way.
    const restore = await copyImages({
      source: new BackupStore(openStore(CLEAN)),
      destination: anonymous(targetProxy.url),
      items: images.map(({ repository, tag }) => ({ repository, tag })),
      repositoryPrefix: 'ref/',
    });
    expect(restore.map((r) => r.status)).toEqual(images.map(() => 'copied'));
    reference.target = targetProxy.requests.length;
  } finally {
    await Promise.all([sourceProxy.stop(), s3Proxy.stop(), targetProxy.stop()]);
  }
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
  console.log(`kill -9 tally: ${JSON.stringify({ ...tally, reference })}`);
});

/** A proxy that faults its nth request with `action` (hold, or lose-response: done upstream, never answered). */
function faultAt(upstream: string, nth: number, action: InterceptAction | undefined) {
  let count = 0;
  return startLyingProxy({ upstream, intercept: () => (++count === nth ? action : undefined) });
}

/** Runs the CLI and kills it with -9 once `proxy` holds its request; false when it finished first. */
async function killWhenHeld(args: string[], env: Record<string, string>, proxy: LyingProxy): Promise<boolean> {
  const child = startCli(args, { env });
  let exited = false;
  void child.finally(() => (exited = true));
  while (!exited && !proxy.intercepted.some((i) => i.action === 'hold' || i.upstreamDone)) await new Promise((r) => setTimeout(r, 10));
  if (exited) return false;
  child.kill('SIGKILL');
  expect((await child).signal).toBe('SIGKILL');
  tally.kills++;
  return true;
}

async function digestAt(repository: string, tag: string): Promise<string | null> {
  const res = await fetch(`${target.url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

/** What a store holds that a user sees: its blob keys and every repository's tags with digests. */
async function contents(store: string) {
  const objects = openStore(store);
  const blobs: string[] = [];
  for await (const o of objects.list(BLOBS_PREFIX)) blobs.push(o.key);
  const backup = new BackupStore(objects);
  const tags: string[] = [];
  for (const repository of await backup.listRepositories())
    for (const l of await backup.repository(repository).listImages()) tags.push(`${repository}:${l.tag}@${l.digest}`);
  return { blobs: blobs.sort(), tags: tags.sort() };
}

const pick = <T>(random: () => number, values: readonly T[]): T => values[Math.floor(random() * values.length)]!;

describe('kill -9 at seeded random points', () => {
  it(`during backup: verify clean, every listed image restores exact, a re-run completes to a clean run's store (${TRIALS} trial(s), seed ${SEED})`, async () => {
    const clean = await contents(CLEAN);
    for (let trial = 0; trial < TRIALS; trial++) {
      const random = rng(SEED * 1000 + trial);
      const side = pick(random, ['registry', 's3'] as const);
      const action = pick(random, ['hold', 'lose-response'] as const);
      const nth = between(random, 1, (side === 'registry' ? reference.source : reference.s3) - 1);
      const store = `s3://${BUCKET}/backup-${SEED}-${trial}`;
      const [sourceProxy, s3Proxy] = await Promise.all([
        faultAt(source.url, nth, side === 'registry' ? action : undefined),
        faultAt(moto.url, nth, side === 's3' ? action : undefined),
      ]);
      tally.scenarios++;
      tally.images += images.length;
      try {
        const args = ['backup', '--registry', sourceProxy.url, '--to', store, '--repositories', ...repositories()];
        const killed = await killWhenHeld(
          args,
          { ...moto.env, AWS_ENDPOINT_URL: s3Proxy.url },
          side === 'registry' ? sourceProxy : s3Proxy,
        );
        // nth is within the clean run's requests, so the CLI cannot finish without it: a scenario with no kill proves nothing.
        expect(killed, `backup: ${side} request ${nth} (${action}) was never reached`).toBe(true);
        tally.killedAt[`backup-${side}-${action}`] = (tally.killedAt[`backup-${side}-${action}`] ?? 0) + 1;
      } finally {
        await Promise.all([sourceProxy.stop(), s3Proxy.stop()]);
      }
      const where = `trial ${trial}: ${side} request ${nth} (${action})`;
      expect((await verifyStore(new BackupStore(openStore(store)))).problems, where).toEqual([]);

      // Every image the killed run's store lists restores digest-exact.
      const partial = new BackupStore(openStore(store));
      const listed = (await contents(store)).tags;
      const items = [];
      for (const repository of await partial.listRepositories())
        for (const l of await partial.repository(repository).listImages()) items.push({ repository, tag: l.tag! });
      const prefix = `kb${SEED}-${trial}/`;
      const restored = await copyImages({ source: partial, destination: anonymous(target.url), items, repositoryPrefix: prefix });
      expect(
        restored.filter((r) => r.status === 'failed').map((r) => r.error),
        where,
      ).toEqual([]);
      for (const { repository, tag, image } of images) {
        if (!listed.includes(`${repository}:${tag}@${image.digest}`)) continue;
        expect(await digestAt(`${prefix}${repository}`, tag), `${where} ${repository}:${tag}`).toBe(image.digest);
      }
      expect(
        listed.every((l) => clean.tags.includes(l)),
        where,
      ).toBe(true);

      // A clean re-run completes everything; the store then equals a clean run's.
      const rerun = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', store, '--repositories', ...repositories()], {
        env: moto.env,
      });
      if (rerun.exitCode === 0 && (rerun.json?.counts?.failed ?? 1) > 0) tally.falseExit0++;
      expect(rerun.exitCode, `${where}\n${rerun.stderr}`).toBe(0);
      const after = await contents(store);
      tally.imagesLost += clean.tags.filter((t) => !after.tags.includes(t)).length;
      expect(after, where).toEqual(clean);
      expect((await verifyStore(new BackupStore(openStore(store)))).problems, where).toEqual([]);
    }
    expect(tally).toMatchObject({ imagesLost: 0, falseExit0: 0 });
  }, 120_000);

  it(`during restore: the target holds only exact images, and a re-run restores everything exact (${TRIALS} trial(s), seed ${SEED})`, async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const random = rng(SEED * 1000 + 500 + trial);
      const action = pick(random, ['hold', 'lose-response'] as const);
      const nth = between(random, 1, reference.target - 1);
      const prefix = `kr${SEED}-${trial}/`;
      const proxy = await faultAt(target.url, nth, action);
      tally.scenarios++;
      tally.images += images.length;
      try {
        const killed = await killWhenHeld(
          ['restore', '--from', CLEAN, '--registry', proxy.url, '--repository-prefix', prefix],
          moto.env,
          proxy,
        );
        expect(killed, `restore: target request ${nth} (${action}) was never reached`).toBe(true);
        tally.killedAt[`restore-${action}`] = (tally.killedAt[`restore-${action}`] ?? 0) + 1;
      } finally {
        await proxy.stop();
      }
      const where = `trial ${trial}: target request ${nth} (${action})`;
      for (const { repository, tag, image } of images)
        expect([null, image.digest], `${where} ${repository}:${tag}`).toContain(await digestAt(`${prefix}${repository}`, tag));

      const rerun = await runCliJson<RunReport>(['restore', '--from', CLEAN, '--registry', target.url, '--repository-prefix', prefix], {
        env: moto.env,
      });
      if (rerun.exitCode === 0 && (rerun.json?.counts?.failed ?? 1) > 0) tally.falseExit0++;
      expect(rerun.exitCode, `${where}\n${rerun.stderr}`).toBe(0);
      for (const { repository, tag, image } of images) {
        const digest = await digestAt(`${prefix}${repository}`, tag);
        if (digest !== image.digest) tally.imagesLost++;
        expect(digest, `${where} ${repository}:${tag}`).toBe(image.digest);
      }
    }
    expect(tally).toMatchObject({ imagesLost: 0, falseExit0: 0 });
  }, 120_000);
});
