// Repository settings (tag mutability, scan on push, encryption, lifecycle policy, repository policy,
// tags): recorded by a backup from ECR, applied when a restore creates a repository, compared when the
// repository exists. moto is the ECR control plane; a real registry behind moto's authorization token
// is the data plane (as in cli.test.ts). Settings are read back with plain ECR API calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  type ECRClient,
  GetLifecyclePolicyCommand,
  GetRepositoryPolicyCommand,
  ListTagsForResourceCommand,
  PutImageCommand,
  PutImageTagMutabilityCommand,
  PutLifecyclePolicyCommand,
  SetRepositoryPolicyCommand,
  TagResourceCommand,
} from '@aws-sdk/client-ecr';
import { motoService, registryService, useServices } from './harness/services.ts';
import { ECR_AUTH } from './harness/registry-client.ts';
import { tempDir } from './harness/process.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage } from './harness/fixtures.ts';
import type { PushedImage } from './harness/fixture-types.ts';
import type { RepositoryNote, RunReport } from '../schema/contract.ts';
import { diffRepositorySettings } from '../core/model/repository-settings.ts';
import { createRepositoryWithSettings } from '../core/registry/repository-settings.ts';
import type { RepositorySettings } from '../schema/repository-settings.ts';

const REPO = 'team/app';
const KMS_KEY = 'arn:aws:kms:us-east-1:123456789012:key/0b4c2f1e-1111-2222-3333-444455556666';
const LIFECYCLE = JSON.stringify({
  rules: [
    {
      rulePriority: 1,
      description: 'keep 10',
      selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 10 },
      action: { type: 'expire' },
    },
  ],
});
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'pull',
      Effect: 'Allow',
      Principal: { AWS: 'arn:aws:iam::123456789012:root' },
      Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
    },
  ],
});

const { moto, registry } = useServices({
  moto: motoService(),
  registry: registryService(ECR_AUTH),
});
let ecr: ECRClient;
let image: PushedImage;
let store: string;
let env: Record<string, string>;

type Report = RunReport & { repositoryNotes?: RepositoryNote[] };

beforeAll(async () => {
  env = { ...moto.env, ECR_BACKUP_ECR_REGISTRY_URL: registry.url };
  ecr = moto.ecr();
  image = await pushImage(registry, { repository: REPO, tag: '1.0', variant: 'settings' });
  await ecr.send(
    new CreateRepositoryCommand({
      repositoryName: REPO,
      imageTagMutability: 'IMMUTABLE',
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfiguration: { encryptionType: 'KMS', kmsKey: KMS_KEY },
      tags: [
        { Key: 'team', Value: 'payments' },
        { Key: 'cost-center', Value: '42' },
      ],
    }),
  );
  await ecr.send(new PutLifecyclePolicyCommand({ repositoryName: REPO, lifecyclePolicyText: LIFECYCLE }));
  await ecr.send(new SetRepositoryPolicyCommand({ repositoryName: REPO, policyText: POLICY }));
  const manifest = await inspectRaw(`${registry.host}/${REPO}:1.0`, registry.credentials);
  // moto computes digests wrongly: pass the real one.
  await ecr.send(
    new PutImageCommand({
      repositoryName: REPO,
      imageTag: '1.0',
      imageManifest: manifest.bytes.toString('utf8'),
      imageManifestMediaType: manifest.mediaType,
      imageDigest: image.digest,
    }),
  );
  store = await tempDir('store');
});

afterAll(async () => {
  await cleanupFixtures();
});

/** A repository's settings read back with plain ECR API calls. */
async function settingsOf(name: string) {
  const repository = (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }))).repositories![0]!;
  const lifecycle = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: name })).then(
    (r) => r.lifecyclePolicyText,
    (e: Error) => e.name,
  );
  const policy = await ecr.send(new GetRepositoryPolicyCommand({ repositoryName: name })).then(
    (r) => r.policyText,
    (e: Error) => e.name,
  );
  const tags = (await ecr.send(new ListTagsForResourceCommand({ resourceArn: repository.repositoryArn }))).tags ?? [];
  return {
    mutability: repository.imageTagMutability,
    scanOnPush: repository.imageScanningConfiguration?.scanOnPush,
    encryption: repository.encryptionConfiguration,
    lifecycle,
    policy,
    tags: Object.fromEntries(tags.map((t) => [t.Key, t.Value])),
  };
}

async function settingsFiles(repository: string): Promise<string[]> {
  return (await readdir(join(store, 'catalog', repository, '_settings')).catch(() => [])).sort();
}

describe('repository settings', () => {
  it('repository settings round trip through moto ECR', async () => {
    const original = await settingsOf(REPO);
    expect(original).toMatchObject({
      mutability: 'IMMUTABLE',
      scanOnPush: true,
      encryption: { encryptionType: 'KMS', kmsKey: KMS_KEY },
      lifecycle: LIFECYCLE,
      policy: POLICY,
    });

    // Backup from ECR records the settings next to the tag records.
    const backup = await runCliJson<Report>(['backup', '--to', store], { env });
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.json.results).toEqual([
      expect.objectContaining({ repository: REPO, tag: '1.0', digest: image.digest, status: 'copied' }),
    ]);
    expect(backup.json.repositoryNotes).toEqual([{ repository: REPO, action: 'recorded' }]);
    const files = await settingsFiles(REPO);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{8}T\d{9}Z_[a-f0-9]{16}\.json$/);
    const record = JSON.parse(await readFile(join(store, 'catalog', REPO, '_settings', files[0]!), 'utf8'));
    expect(record).toMatchObject({
      repository: REPO,
      settings: {
        imageTagMutability: 'IMMUTABLE',
        scanOnPush: true,
        encryption: { type: 'KMS', kmsKey: KMS_KEY },
        lifecyclePolicy: LIFECYCLE,
        repositoryPolicy: POLICY,
        tags: { team: 'payments', 'cost-center': '42' },
      },
    });
    // `_settings` is not a repository or an image: list shows the one image only.
    const list = await runCliJson<Array<{ repository: string; tag?: string }>>(['list', '--from', store], { env });
    expect(list.json).toEqual([expect.objectContaining({ repository: REPO, tag: '1.0' })]);

    // Unchanged settings are not written again.
    const again = await runCliJson<Report>(['backup', '--to', store], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json.repositoryNotes).toEqual([{ repository: REPO, action: 'unchanged' }]);
    expect(await settingsFiles(REPO)).toHaveLength(1);

    // Restore creates the missing repository with the same settings, and the image digest for digest.
    const restore = await runCliJson<Report>(['restore', '--from', store, '--repository-prefix', 'restored/', '--apply-policies'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.counts).toMatchObject({ copied: 1, failed: 0 });
    expect(restore.json.repositoryNotes).toEqual([
      { repository: REPO, targetRepository: `restored/${REPO}`, action: 'created', settingsApplied: true },
    ]);
    expect(await settingsOf(`restored/${REPO}`)).toEqual(original);
    expect((await inspectRaw(`${registry.host}/restored/${REPO}:1.0`, registry.credentials)).digest).toBe(image.digest);
  });

  it('without --apply-policies, restore creates the repository without its lifecycle and repository policies', async () => {
    const restore = await runCliJson<Report>(['restore', '--from', store, '--repository-prefix', 'nopolicies/'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.repositoryNotes).toEqual([
      {
        repository: REPO,
        targetRepository: `nopolicies/${REPO}`,
        action: 'created',
        settingsApplied: true,
        skipped: ['lifecycle policy', 'repository policy'],
      },
    ]);
    expect(await settingsOf(`nopolicies/${REPO}`)).toEqual({
      mutability: 'IMMUTABLE',
      scanOnPush: true,
      encryption: { encryptionType: 'KMS', kmsKey: KMS_KEY },
      lifecycle: 'LifecyclePolicyNotFoundException',
      policy: 'RepositoryPolicyNotFoundException',
      tags: { team: 'payments', 'cost-center': '42' },
    });
  });

  it('restoring into an existing repository reports the differences and changes none of its settings', async () => {
    const target = `existing/${REPO}`;
    await ecr.send(
      new CreateRepositoryCommand({
        repositoryName: target,
        tags: [
          { Key: 'team', Value: 'platform' },
          { Key: 'extra', Value: 'yes' },
        ],
      }),
    );
    const before = await settingsOf(target);

    const restore = await runCliJson<Report>(['restore', '--from', store, '--repository-prefix', 'existing/', '--apply-policies'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.json.counts).toMatchObject({ copied: 1, failed: 0 });
    const notes = restore.json.repositoryNotes!;
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ repository: REPO, targetRepository: target, action: 'exists' });
    expect(notes[0]!.differences).toEqual([
      'tag mutability: backup IMMUTABLE, repository MUTABLE',
      'scan on push: backup on, repository off',
      `encryption: backup KMS (${KMS_KEY}), repository AES256`,
      'lifecycle policy: in the backup, missing from the repository',
      'repository policy: in the backup, missing from the repository',
      'tag cost-center: backup "42", missing from the repository',
      'tag extra: repository "yes", not in the backup',
      'tag team: backup "payments", repository "platform"',
    ]);
    expect(await settingsOf(target)).toEqual(before);

    // The text summary says the same; without --apply-policies the policies are left out of the comparison.
    const text = await runCli(['restore', '--from', store, '--repository-prefix', 'existing/'], { env });
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${target} exists and was left unchanged; its settings differ from the backup:`);
    expect(text.stdout).toContain('- tag mutability: backup IMMUTABLE, repository MUTABLE');
    expect(text.stdout).toContain('- tag team: backup "payments", repository "platform"');
    expect(text.stdout).not.toContain('lifecycle policy');
    expect(await settingsOf(target)).toEqual(before);
  });

  it('a settings change is a new record, and --as-of restores the settings of that time', async () => {
    const between = new Date();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await ecr.send(new PutImageTagMutabilityCommand({ repositoryName: REPO, imageTagMutability: 'MUTABLE' }));
    const arn = (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [REPO] }))).repositories![0]!.repositoryArn!;
    await ecr.send(new TagResourceCommand({ resourceArn: arn, tags: [{ Key: 'team', Value: 'checkout' }] }));

    const backup = await runCliJson<Report>(['backup', '--to', store], { env });
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.json.repositoryNotes).toEqual([{ repository: REPO, action: 'recorded' }]);
    expect(await settingsFiles(REPO)).toHaveLength(2);

    const now = await runCliJson<Report>(['restore', '--from', store, '--repository-prefix', 'latest/'], { env });
    expect(now.exitCode, now.stderr).toBe(0);
    expect(await settingsOf(`latest/${REPO}`)).toMatchObject({ mutability: 'MUTABLE', tags: { team: 'checkout', 'cost-center': '42' } });

    const then = await runCliJson<Report>(['restore', '--from', store, '--repository-prefix', 'then/', '--as-of', between.toISOString()], {
      env,
    });
    expect(then.exitCode, then.stderr).toBe(0);
    expect(await settingsOf(`then/${REPO}`)).toMatchObject({ mutability: 'IMMUTABLE', tags: { team: 'payments', 'cost-center': '42' } });
  });
});

describe('repository settings helpers', () => {
  const recorded: RepositorySettings = {
    imageTagMutability: 'IMMUTABLE',
    scanOnPush: false,
    encryption: { type: 'AES256' },
    lifecyclePolicy: '{"rules":[{"rulePriority":1}]}',
    tags: { a: '1' },
  };

  it('compares policies as JSON and tags as a map', () => {
    expect(diffRepositorySettings({ ...recorded, lifecyclePolicy: '{ "rules": [ { "rulePriority": 1 } ] }' }, recorded)).toEqual([]);
    expect(diffRepositorySettings({ ...recorded, lifecyclePolicy: '{"rules":[]}' }, recorded)).toEqual([
      'lifecycle policy: differs from the backup',
    ]);
    expect(diffRepositorySettings({ ...recorded, lifecyclePolicy: undefined }, recorded, { ignorePolicies: true })).toEqual([]);
  });

  it('falls back to the AWS managed key when CreateRepository refuses the recorded KMS key (scripted client: moto accepts any key)', async () => {
    const sent: Array<{ name: string; input: Record<string, unknown> }> = [];
    const client = {
      send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        sent.push({ name: command.constructor.name, input: command.input });
        const encryption = command.input.encryptionConfiguration as { kmsKey?: string } | undefined;
        if (command.constructor.name === 'CreateRepositoryCommand' && encryption?.kmsKey) {
          throw Object.assign(new Error('KMS key does not exist in this region'), { name: 'KmsException' });
        }
        return {};
      },
    } as unknown as Pick<ECRClient, 'send'>;
    const outcome = await createRepositoryWithSettings(client, 'dr/app', { ...recorded, encryption: { type: 'KMS', kmsKey: KMS_KEY } });
    expect(outcome?.action).toBe('created');
    expect(outcome?.problems).toEqual([expect.stringMatching(/KMS key .* not usable .*KmsException.*AWS managed key \(KMS\)/)]);
    expect(sent.filter((c) => c.name === 'CreateRepositoryCommand').map((c) => c.input.encryptionConfiguration)).toEqual([
      { encryptionType: 'KMS', kmsKey: KMS_KEY },
      { encryptionType: 'KMS' },
    ]);
    expect(sent.map((c) => c.name)).toContain('PutLifecyclePolicyCommand');
  });
});
