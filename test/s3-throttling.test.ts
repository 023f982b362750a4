// S3 that throttles: a loopback proxy in front of moto answers every third request with S3's real
// 503 SlowDown error. A backup must still finish complete and verified, through the SDK's retries.
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { motoService, registryService, useServices } from './harness/services.ts';
import { freePort } from './harness/process.ts';
import { runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushManyLayerImage, pushSharedBaseTags } from './harness/fixtures.ts';
import type { RunReport } from '../schema/contract.ts';

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

const { moto, registry } = useServices({ moto: motoService(), registry: registryService() });
let proxy: Server;
let proxyUrl: string;
let requests = 0;
let throttled = 0;

beforeAll(async () => {
  const upstream = new URL(moto.url);
  proxy = createServer((req, res) => {
    requests++;
    if (requests % 3 === 0) {
      throttled++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' }).end(SLOW_DOWN);
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${port}`;
  const s3 = moto.s3();
  await s3.send(new CreateBucketCommand({ Bucket: 'throttled' }));
  await pushSharedBaseTags(registry, { repository: 'slow/app', tags: 3, baseSize: 6 * 1024 * 1024, uniqueSize: 64 * 1024 });
  await pushManyLayerImage(registry, { repository: 'slow/layers', layers: 20 });
});

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  await cleanupFixtures();
});

it('a backup through S3 answering every third request with 503 SlowDown completes and verifies (scripted throttling proxy before moto)', async () => {
  const env = { ...moto.env, AWS_ENDPOINT_URL: proxyUrl };
  const store = 's3://throttled/store';
  const backup = await runCliJson<RunReport>(['backup', '--registry', registry.url, '--to', store], { env });
  expect(backup.exitCode, backup.stderr).toBe(0);
  expect(backup.json.counts).toMatchObject({ images: 4, copied: 4, failed: 0 });
  expect(throttled).toBeGreaterThan(10);

  // The store is verified straight from moto: through the proxy the SDK's adaptive rate limiter
  // slows verify's reads to ~2 per second (40 s) and proves no more than the backup's retries did.
  const verify = await runCliJson<{ problems: unknown[]; checkedBlobs: number }>(['verify', '--from', store], { env: moto.env });
  expect(verify.exitCode).toBe(0);
  expect(verify.json.problems).toEqual([]);
  expect(verify.json.checkedBlobs).toBeGreaterThanOrEqual(3 + 3 + 1 + 21);
});
