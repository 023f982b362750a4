// Errors that say where: a failure of backup, restore or verify names the operation, the
// repository:tag, the blob digest and the endpoint (registry host, or the store), and nothing secret.
// Lasting (non-transient) faults are injected by proxies in front of the registries and S3 (moto),
// and the failure texts of `--json` are checked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../schema/contract.ts';
import type { VerifyReport } from '../core/store/verify.ts';
import { runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { startLyingProxy, type LyingProxy } from './harness/lying-proxy.ts';
import { motoService, registryService, useServices } from './harness/services.ts';

const BUCKET = 'errors';
const STORE = `s3://${BUCKET}/store`;
const REPO = 'ec/app';

const { source, target, moto } = useServices({
  source: registryService(),
  target: registryService(),
  moto: motoService({ awsEnv: true, buckets: [BUCKET] }),
});
let image: PushedImage;
let layer: string;

beforeAll(async () => {
  image = await pushImage(source, { repository: REPO, tag: '1', variant: 'errors' });
  layer = image.blobs.find((b) => b.digest !== image.configDigest)!.digest;
  const backup = await runCliJson<RunReport>(['backup', '--registry', source.url, '--to', STORE, '--repositories', REPO], {
    env: moto.env,
  });
  expect(backup.exitCode, backup.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

const hex = () => layer.slice('sha256:'.length);

/** Runs with a proxy in front of `upstream` that refuses (403) every request `matches` picks. */
async function withRefusal<T>(
  upstream: string,
  matches: (method: string, path: string) => boolean,
  run: (proxy: LyingProxy) => Promise<T>,
) {
  const proxy = await startLyingProxy({ upstream, intercept: ({ method, path }) => (matches(method, path) ? 'status-403' : undefined) });
  try {
    return await run(proxy);
  } finally {
    await proxy.stop();
  }
}

function expectWhere(text: string | undefined, ...parts: string[]): void {
  for (const part of parts) expect(text, `"${text}" should name ${part}`).toContain(part);
  expect(text).not.toMatch(/X-Amz-|Authorization|\[REDACTED\]/i);
}

describe('failures name the operation, repository:tag, blob digest and endpoint', () => {
  it('backup: the source registry serves a layer with wrong bytes', async () => {
    const proxy = await startLyingProxy({ upstream: source.url, digests: [layer] });
    try {
      const r = await runCliJson<RunReport>(['backup', '--registry', proxy.url, '--to', `s3://${BUCKET}/lie`, '--repositories', REPO], {
        env: moto.env,
      });
      expect(r.exitCode).toBe(1);
      expectWhere(r.json.failures[0]?.error, `${REPO}:1`, 'copying blob', layer, proxy.host);
    } finally {
      await proxy.stop();
    }
  });

  it('backup: S3 refuses the write of a layer', async () => {
    await withRefusal(
      moto.url,
      (method, path) => method === 'PUT' && path.endsWith(hex()),
      async (proxy) => {
        const r = await runCliJson<RunReport>(
          ['backup', '--registry', source.url, '--to', `s3://${BUCKET}/refused`, '--repositories', REPO],
          {
            env: { ...moto.env, AWS_ENDPOINT_URL: proxy.url },
          },
        );
        expect(r.exitCode).toBe(1);
        expectWhere(r.json.failures[0]?.error, `${REPO}:1`, layer, `s3://${BUCKET}/refused`, 'copying blob');
      },
    );
  });

  it('restore: S3 refuses the read of a layer', async () => {
    await withRefusal(
      moto.url,
      (method, path) => method === 'GET' && path.endsWith(hex()),
      async (proxy) => {
        const r = await runCliJson<RunReport>(
          ['restore', '--from', STORE, '--registry', target.url, '--repository-prefix', 's3-refused/'],
          {
            env: { ...moto.env, AWS_ENDPOINT_URL: proxy.url },
          },
        );
        expect(r.exitCode).toBe(1);
        expectWhere(r.json.failures[0]?.error, `${REPO}:1`, layer, STORE, 'copying blob');
      },
    );
  });

  it('restore: the target registry refuses the upload of a layer', async () => {
    await withRefusal(
      target.url,
      (method, path) => method !== 'GET' && method !== 'HEAD' && path.includes('/blobs/uploads/'),
      async (proxy) => {
        const r = await runCliJson<RunReport>(['restore', '--from', STORE, '--registry', proxy.url, '--repository-prefix', 'refused/'], {
          env: moto.env,
        });
        expect(r.exitCode).toBe(1);
        expectWhere(r.json.failures[0]?.error, `${REPO}:1`, proxy.host, 'sha256:');
        expect([layer, image.configDigest].some((d) => d !== undefined && r.json.failures[0]?.error?.includes(d))).toBe(true);
      },
    );
  });

  it('verify: S3 refuses the read of a layer', async () => {
    await withRefusal(
      moto.url,
      (method, path) => method === 'GET' && path.endsWith(hex()),
      async (proxy) => {
        const r = await runCliJson<VerifyReport>(['verify', '--from', STORE], { env: { ...moto.env, AWS_ENDPOINT_URL: proxy.url } });
        expect(r.exitCode).toBe(1);
        const problem = r.json.problems[0]!;
        expect(problem).toMatchObject({ repository: REPO, tag: '1', blob: layer, problem: 'unreadable' });
        expectWhere(problem.detail, 'reading', STORE, hex());
      },
    );
  });
});
