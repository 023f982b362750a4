// The CDK stack's IAM, synthesized once in-process with the test configuration: least privilege per
// role (listing, backup, restore, summary), the S3 gateway endpoint, no wildcard actions.
import type { Template } from 'aws-cdk-lib/assertions';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CfnTemplate } from './harness/synthesized-workflow.ts';
import type { EcrBackupStack } from '../infra/stack.ts';
import { actionsOf, actionsOfRole, statementsOf, synthesizeTestStack, type Statement, type TestStack } from './harness/infra-stack.ts';

let synth: TestStack;
let stack: EcrBackupStack;
let json: CfnTemplate;
let template: Template;

beforeAll(() => {
  synth = synthesizeTestStack();
  ({ stack, json, template } = synth);
});

const ECR_PUSH = ['ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:CreateRepository'];
describe('IAM', () => {
  it('gives the listing Lambda ECR read only, no push', () => {
    const actions = actionsOfRole(synth, stack.backup.listFunction.role!);
    expect(actions).toContain('ecr:DescribeImages');
    expect(actions).toContain('ecr:DescribeRepositories');
    for (const a of ECR_PUSH) expect(actions).not.toContain(a);
    expect(actions).not.toContain('ecr:GetDownloadUrlForLayer');
  });

  it('leaves repository settings to the listing Lambda: the backup task cannot read policies', () => {
    const actions = actionsOfRole(synth, stack.backup.backupTaskDefinition.taskRole);
    for (const a of ['ecr:GetLifecyclePolicy', 'ecr:GetRepositoryPolicy', 'ecr:ListTagsForResource']) expect(actions).not.toContain(a);
  });

  it('moves only blobs over 128 KiB (layers, not manifests) to the chosen storage class, and nothing under catalog/', () => {
    type BucketProperties = { ObjectLockEnabled?: boolean; LifecycleConfiguration: { Rules: Array<{ Transitions?: unknown }> } };
    const bucket = Object.values(json.Resources).find(
      (r) => r.Type === 'AWS::S3::Bucket' && (r.Properties as BucketProperties | undefined)?.ObjectLockEnabled,
    )!;
    const rules = (bucket.Properties as BucketProperties).LifecycleConfiguration.Rules;
    const moving = rules.filter((r) => r.Transitions);
    expect(moving).toEqual([
      expect.objectContaining({
        Prefix: 'backups/ecr/blobs/',
        ObjectSizeGreaterThan: 131072,
        Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 45 }],
      }),
    ]);
  });

  it("lets the listing Lambda read the protected repositories' settings and write only settings records, tombstones and deleted-repository markers to catalog/", () => {
    const statements = statementsOf(synth, stack.backup.listFunction.role!);
    const settings = statements.find((s) => actionsOf(s).includes('ecr:GetLifecyclePolicy'))!;
    expect(actionsOf(settings).sort()).toEqual(['ecr:GetLifecyclePolicy', 'ecr:GetRepositoryPolicy', 'ecr:ListTagsForResource']);
    const resources = JSON.stringify(stack.resolve(settings.Resource));
    expect(resources).toContain(':repository/team-a/*');
    expect(resources).toContain(':repository/shared/base');
    // Allow statements only: the write-once Deny (blobs/, catalog/) grants nothing.
    const writes = statements
      .filter((s) => s.Effect !== 'Deny' && actionsOf(s).includes('s3:PutObject'))
      .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]));
    const written = writes.map((r) => JSON.stringify(stack.resolve(r)));
    expect(written.some((r) => r.includes('/backups/ecr/catalog/*/_settings/*'))).toBe(true);
    expect(written.some((r) => r.includes('/backups/ecr/catalog/*/_tags/*_deleted.json'))).toBe(true);
    for (const r of written)
      expect(r).toMatch(
        /\/backups\/ecr\/(runs\/\*|catalog\/\*\/_settings\/\*|catalog\/\*\/_tags\/\*_deleted\.json|catalog\/_deleted\/\*)"/,
      );
    // It deletes nothing but the markers of repositories that came back at the source.
    const deletes = statements.filter((s) => actionsOf(s).includes('s3:DeleteObject'));
    expect(deletes.map((s) => JSON.stringify(stack.resolve(s.Resource)))).toEqual([
      expect.stringMatching(/\/backups\/ecr\/catalog\/_deleted\/\*"\]\]}$/),
    ]);
  });

  it('lets the backup task pull the protected repositories but never push', () => {
    const role = stack.backup.backupTaskDefinition.taskRole;
    const statements = statementsOf(synth, role);
    const actions = actionsOfRole(synth, role);
    for (const a of ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken']) expect(actions).toContain(a);
    for (const a of ECR_PUSH) expect(actions).not.toContain(a);
    const pull = statements.find((s) => actionsOf(s).includes('ecr:BatchGetImage'))!;
    const resources = JSON.stringify(stack.resolve(pull.Resource));
    expect(resources).toContain(':repository/team-a/*');
    expect(resources).toContain(':repository/shared/base');
    // ecr:GetAuthorizationToken is the only action on "*".
    for (const s of statements) if (JSON.stringify(s.Resource) === '"*"') expect(actionsOf(s)).toEqual(['ecr:GetAuthorizationToken']);
  });

  it('lets the restore task push, through its own role', () => {
    const actions = actionsOfRole(synth, stack.backup.restoreTaskDefinition.taskRole);
    for (const a of ECR_PUSH) expect(actions).toContain(a);
    expect(stack.backup.restoreTaskDefinition.taskRole).not.toBe(stack.backup.backupTaskDefinition.taskRole);
    // The restore task reads the store and writes only results under runs/.
    const writes = statementsOf(synth, stack.backup.restoreTaskDefinition.taskRole).filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(JSON.stringify(writes.map((s) => s.Resource))).not.toMatch(/blobs|catalog/);
    // Only the protected repositories (restoreRepositories' default), in the stack's own region.
    const push = statementsOf(synth, stack.backup.restoreTaskDefinition.taskRole).find((s) => actionsOf(s).includes('ecr:PutImage'))!;
    const resources = JSON.stringify(push.Resource);
    expect(resources).toContain('repository/team-a/*');
    expect(resources).toContain('repository/shared/base');
    expect(resources).not.toMatch(/repository\/\*"/);
    expect(resources).not.toMatch(/:ecr:\*:/);
    expect(resources).toContain('AWS::Region');
  });

  it("limits the S3 gateway endpoint to the store bucket and ECR's layer bucket", () => {
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).filter((r) => JSON.stringify(r).includes('.s3'));
    expect(endpoints).toHaveLength(1);
    const policy = JSON.stringify((endpoints[0] as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument);
    expect(policy).toContain('starport-layer-bucket/*');
    expect(policy).not.toContain('"Resource":"*"');
    expect(policy).not.toContain('s3:DeleteObject');
  });

  it('limits the summary Lambda to its topic and run files; its metrics go through its log (EMF), not PutMetricData', () => {
    const statements = statementsOf(synth, stack.backup.summarizeFunction.role!);
    expect(statements.flatMap(actionsOf)).not.toContain('cloudwatch:PutMetricData');
    const publish = statements.find((s) => actionsOf(s).includes('sns:Publish'))!;
    expect(publish.Resource).toEqual({ Ref: stack.resolve((stack.backup.topic.node.defaultChild as CfnRole).logicalId) });
    const writes = statements.filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(JSON.stringify(writes.map((s) => s.Resource))).toContain('/backups/ecr/runs/*/report.json');
  });

  it('has no full wildcard action on anything, ECR or S3', () => {
    const forbidden = new Set(['*', 'ecr:*', 's3:*']);
    for (const [id, r] of Object.entries(json.Resources)) {
      const docs: Array<{ Statement: Statement[] }> = [];
      if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
        docs.push(r.Properties!.PolicyDocument as { Statement: Statement[] });
      if (r.Type === 'AWS::IAM::Role')
        for (const p of (r.Properties?.Policies ?? []) as Array<{ PolicyDocument: { Statement: Statement[] } }>)
          docs.push(p.PolicyDocument);
      for (const d of docs)
        for (const s of d.Statement)
          if (s.Effect === 'Allow') for (const a of actionsOf(s)) expect(forbidden.has(a), `${id}: ${a}`).toBe(false);
    }
  });
});
