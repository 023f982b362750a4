// What must stay impossible, evaluated on the synthesized template by a real IAM policy evaluator
// (harness/iam.ts): identity policy of each role plus the store's bucket policy.
import type { CfnRole, IRole } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesizeTemplate } from './harness/synthesized-workflow.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import type { EcrBackupStack } from '../infra/stack.ts';
import { TemplatePolicies, type Decision } from './harness/iam.ts';
import { evaluateRecordedCalls } from './harness/iam-calls.ts';
import type { LocalWorkflow } from './harness/local-workflow-types.ts';

const config: EcrBackupContext = {
  stackName: 'EcrBackupDenials',
  repositories: ['team/**'],
  schedule: null,
  prefix: 'backups/',
  prune: { keepLast: 3 },
};
let stack: EcrBackupStack;
let policies: TemplatePolicies;
let bucket: string;

beforeAll(() => {
  const synth = synthesizeTemplate({ context: { ecrBackup: config }, nag: false, bundle: false });
  stack = synth.stack;
  policies = new TemplatePolicies(synth.template);
  bucket = `arn:aws:s3:::${policies.storeBucketName()}`;
});

const roleOf = (r: IRole) => ({ roleLogicalId: stack.resolve((r.node.defaultChild as CfnRole).logicalId) as string });
const decide = (r: IRole, action: string, resource: string, context?: Record<string, string>): Promise<Decision> =>
  policies.decide(roleOf(r), { action, resource, ...(context ? { context } : {}) });
const roles = () => ({
  list: stack.backup.listFunction.role!,
  summarize: stack.backup.summarizeFunction.role!,
  prune: stack.backup.pruneFunction!.role!,
  backup: stack.backup.backupTaskDefinition.taskRole,
  restore: stack.backup.restoreTaskRole,
  stateMachine: stack.backup.stateMachine.role,
});

describe('IAM denials (evaluated)', () => {
  it('the backup role cannot delete history, its versions, its retention, or switch versioning/lifecycle/policy', async () => {
    const backup = roles().backup;
    const record = `${bucket}/backups/catalog/team/app/1.0/2026-01-01T00-00-00Z.json`;
    for (const action of [
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:PutObjectRetention',
      's3:BypassGovernanceRetention',
      's3:PutObjectLegalHold',
    ]) {
      expect(await decide(backup, action, record), action).not.toBe('Allowed');
      expect(await decide(backup, action, `${bucket}/backups/blobs/sha256/ab`), action).not.toBe('Allowed');
    }
    for (const action of [
      's3:PutBucketVersioning',
      's3:PutLifecycleConfiguration',
      's3:PutBucketPolicy',
      's3:PutBucketObjectLockConfiguration',
      's3:DeleteBucket',
    ]) {
      expect(await decide(backup, action, bucket), action).not.toBe('Allowed');
    }
  });

  it('blobs/ and catalog/ are write-once: the backup and listing roles add with If-None-Match, never overwrite', async () => {
    const blob = `${bucket}/backups/blobs/sha256/ab`;
    const record = `${bucket}/backups/catalog/team/app/_tags/1.0/20260101T000000Z_ab.json`;
    const settings = `${bucket}/backups/catalog/team/app/_settings/20260101T000000Z_ab.json`;
    const create = { 's3:ObjectCreationOperation': 'true', 's3:if-none-match': '*' };
    const overwrite = { 's3:ObjectCreationOperation': 'true' };
    const multipartStep = { 's3:ObjectCreationOperation': 'false' };
    const { backup, list } = roles();
    for (const key of [blob, record]) {
      expect(await decide(backup, 's3:PutObject', key, create), key).toBe('Allowed');
      expect(await decide(backup, 's3:PutObject', key, multipartStep), key).toBe('Allowed');
      expect(await decide(backup, 's3:PutObject', key, overwrite), key).toBe('ExplicitlyDenied');
    }
    expect(await decide(list, 's3:PutObject', settings, create)).toBe('Allowed');
    expect(await decide(list, 's3:PutObject', settings, overwrite)).toBe('ExplicitlyDenied');
    // runs/ holds this run's working files, rewritten by design; docker-archive tars live under the
    // stack's labels only (the region by default), outside the write-once areas.
    expect(await decide(backup, 's3:PutObject', `${bucket}/backups/runs/r1/results/000000.json`, overwrite)).toBe('Allowed');
    expect(await decide(backup, 's3:PutObject', `${bucket}/backups/us-east-1/team/app/1.0.tar`, overwrite)).toBe('Allowed');
    expect(await decide(backup, 's3:PutObject', `${bucket}/backups/elsewhere/team/app/1.0.tar`, overwrite)).not.toBe('Allowed');
  });

  it('the restore role reads the store but cannot write blobs/ or catalog/', async () => {
    const restore = roles().restore;
    expect(await decide(restore, 's3:GetObject', `${bucket}/backups/blobs/sha256/ab`)).toBe('Allowed');
    for (const key of ['backups/blobs/sha256/ab', 'backups/catalog/team/app/1.0/x.json']) {
      expect(await decide(restore, 's3:PutObject', `${bucket}/${key}`), key).not.toBe('Allowed');
      expect(await decide(restore, 's3:DeleteObject', `${bucket}/${key}`), key).not.toBe('Allowed');
    }
  });

  it('the prune role deletes in blobs/ and catalog/ only: never runs/, never versions, and writes only its own report', async () => {
    const prune = roles().prune;
    expect(await decide(prune, 's3:DeleteObject', `${bucket}/backups/blobs/sha256/ab`)).toBe('Allowed');
    expect(await decide(prune, 's3:DeleteObject', `${bucket}/backups/runs/r1/report.json`)).not.toBe('Allowed');
    expect(await decide(prune, 's3:DeleteObjectVersion', `${bucket}/backups/blobs/sha256/ab`)).not.toBe('Allowed');
    expect(await decide(prune, 's3:PutObject', `${bucket}/backups/runs/r1/report.json`)).not.toBe('Allowed');
    expect(await decide(prune, 's3:PutObject', `${bucket}/backups/runs/r1/prune.json`)).toBe('Allowed');
  });

  it('only the prune role lists incomplete multipart uploads; it aborts them only under the store prefix', async () => {
    for (const [name, role] of Object.entries(roles())) {
      expect(await decide(role, 's3:ListBucketMultipartUploads', bucket), name).toBe(name === 'prune' ? 'Allowed' : 'ImplicitlyDenied');
    }
    const prune = roles().prune;
    expect(await decide(prune, 's3:ListMultipartUploadParts', `${bucket}/backups/blobs/sha256/ab`)).toBe('Allowed');
    expect(await decide(prune, 's3:AbortMultipartUpload', `${bucket}/backups/blobs/sha256/ab`)).toBe('Allowed');
    expect(await decide(prune, 's3:AbortMultipartUpload', `${bucket}/other-prefix/x`)).not.toBe('Allowed');
  });

  it('no role reaches another bucket, or the store bucket outside the prefix', async () => {
    for (const [name, role] of Object.entries(roles())) {
      for (const action of ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']) {
        expect(await decide(role, action, 'arn:aws:s3:::someone-elses-bucket/backups/blobs/sha256/ab'), `${name} ${action}`).not.toBe(
          'Allowed',
        );
        expect(await decide(role, action, `${bucket}/other-prefix/x`), `${name} ${action} outside the prefix`).not.toBe('Allowed');
      }
      expect(await decide(role, 's3:ListBucket', 'arn:aws:s3:::someone-elses-bucket'), `${name} ListBucket`).not.toBe('Allowed');
    }
  });
});

describe('the recorded-call evaluator', () => {
  it('reports a call the template does not grant (a backup task deleting a catalog record)', async () => {
    const call = {
      component: 'backup' as const,
      client: 'S3Client',
      command: 'DeleteObjectCommand',
      input: { Bucket: 'run-bucket', Key: 'backups/catalog/team/app/1.0/x.json' },
      region: 'us-east-1',
    };
    const workflow = {
      template: policies.template,
      calls: [call],
      runBuckets: new Set(['run-bucket']),
      roleOf: { backup: roleOf(roles().backup).roleLogicalId },
    } as unknown as LocalWorkflow;
    const evaluation = await evaluateRecordedCalls(workflow);
    expect(evaluation.denied).toEqual([
      expect.stringMatching(
        /^backup: s3:DeleteObject on arn:aws:s3:::\S+\/backups\/catalog\/team\/app\/1\.0\/x\.json .*-> ImplicitlyDenied/,
      ),
    ]);
  });
});
