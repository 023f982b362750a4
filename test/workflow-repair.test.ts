import type { ECRClient } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EcrBackupContext } from '../infra/context.ts';
import { ENV } from '../schema/environment.ts';
import type { VerifyReport } from '../core/store/verify.ts';
import { blobKey } from '../core/store/layout.ts';
import { openStore } from '../core/store/url.ts';
import { runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage } from './harness/fixtures.ts';
import { inEcr } from './harness/ecr-images.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import { evaluateRecordedCalls } from './harness/iam-calls.ts';
import { createLocalWorkflow } from './harness/local-workflow.ts';
import type { LocalExecution, LocalWorkflow } from './harness/local-workflow-types.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';

const BUCKET = 'wf-repair';
const PREFIX = 'backups/';
const STORE = `s3://${BUCKET}/${PREFIX}`;

const config: EcrBackupContext = {
  stackName: 'EcrBackupRepairTest',
  repositories: ['team/**'],
  schedule: null,
  prefix: PREFIX,
  imageFormat: 'oci',
};

const { moto, registry } = useServices({
  moto: motoService({ awsEnv: true, buckets: [BUCKET], repositories: ['team/app', 'team/web'] }),
  registry: registryService(ECR_AUTH),
});
let workflow: LocalWorkflow;
let ecr: ECRClient;

beforeAll(async () => {
  ecr = moto.ecr();
  workflow = await createLocalWorkflow({ config, awsEnv: moto.env });
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

async function pushToEcr(repositoryName: string, variant: string): Promise<PushedImage> {
  return inEcr(ecr, pushImage(registry, { repository: repositoryName, tag: '1.0', layerSizes: [30_000, 40_000], variant }), ECR_AUTH);
}

const run = () =>
  workflow.run(
    {},
    { bucket: BUCKET, lambdaEnv: { [ENV.ECR_REGISTRY_URL]: registry.url }, workerEnv: { [ENV.ECR_REGISTRY_URL]: registry.url } },
  );
const explain = (e: LocalExecution) =>
  JSON.stringify({ status: e.status, error: e.error, cause: e.cause, states: e.statesEntered }, null, 1);

describe('the workflow repairs what verify found damaged', () => {
  it('a scheduled backup copies a damaged image again; verify is then clean; the next run leaves it unchanged', async () => {
    const app = await pushToEcr('team/app', 'wf-repair-app');
    await pushToEcr('team/web', 'wf-repair-web');
    const first = await run();
    expect(first.status, explain(first)).toBe('SUCCEEDED');
    expect(first.output).toMatchObject({ counts: { images: 2, copied: 2, failed: 0 } });

    // A layer of team/app is lost from the store; a plain scheduled backup would call it unchanged.
    const lost = app.blobs.find((b) => b.digest !== app.configDigest)!;
    await openStore(STORE).delete(blobKey(lost.digest));
    const damaged = await runCliJson<VerifyReport>(['verify', '--from', STORE], { env: moto.env });
    expect(damaged.exitCode).toBe(1);
    expect(damaged.json.problems.map((p) => [p.repository, p.blob, p.problem])).toEqual([['team/app', lost.digest, 'missing']]);

    const repaired = await run();
    expect(repaired.status, explain(repaired)).toBe('SUCCEEDED');
    expect(repaired.output).toMatchObject({ counts: { images: 2, copied: 1, unchanged: 1, failed: 0, bytesCopied: lost.size } });

    const clean = await runCliJson<VerifyReport>(['verify', '--from', STORE], { env: moto.env });
    expect(clean.exitCode, JSON.stringify(clean.json.problems)).toBe(0);

    // The mark is closed: the next run copies nothing.
    const third = await run();
    expect(third.status, explain(third)).toBe('SUCCEEDED');
    expect(third.output).toMatchObject({ counts: { images: 2, copied: 0, unchanged: 2, failed: 0 } });

    const evaluation = await evaluateRecordedCalls(workflow);
    expect(evaluation.denied).toEqual([]);
  }, 240_000);
});
