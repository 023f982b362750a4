// The permissions and the workflow of the sample deployment (cdk.json), committed as
// test/snapshots/template.json so that every IAM or state machine change shows in a diff.
// Intrinsics are resolved to the fake ARNs of test/harness/synthesized-workflow.ts; asset hashes do not appear (Lambda
// code and the worker image are not part of the snapshot). Update: `npm run snapshot:update`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { concreteAsl, resolveValue, synthesizeTemplate, type CfnTemplate } from './harness/synthesized-workflow.ts';

const FILE = path.join(import.meta.dirname, 'snapshots', 'template.json');

function snapshotOf(template: CfnTemplate): Record<string, unknown> {
  const resolve = (v: unknown) => resolveValue(template, v);
  const roles: Record<string, { trust: unknown; statements: unknown[] }> = {};
  const resourcePolicies: Record<string, unknown> = {};
  for (const [id, r] of Object.entries(template.Resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::Role') {
      const inline = ((p.Policies ?? []) as Array<{ PolicyDocument: { Statement: unknown[] } }>).flatMap((x) => x.PolicyDocument.Statement);
      roles[id] = { trust: resolve(p.AssumeRolePolicyDocument), statements: resolve(inline) as unknown[] };
    }
  }
  for (const [id, r] of Object.entries(template.Resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::Policy') {
      for (const role of p.Roles as Array<{ Ref: string }>)
        roles[role.Ref]!.statements.push(...(resolve((p.PolicyDocument as { Statement: unknown[] }).Statement) as unknown[]));
    }
    if (r.Type === 'AWS::S3::BucketPolicy' || r.Type === 'AWS::SNS::TopicPolicy') resourcePolicies[id] = resolve(p.PolicyDocument);
    if (r.Type === 'AWS::KMS::Key') resourcePolicies[id] = resolve(p.KeyPolicy);
  }
  const managed = Object.fromEntries(
    Object.entries(template.Resources)
      .filter(([, r]) => r.Type === 'AWS::IAM::Role')
      .map(([id, r]) => [id, resolve(r.Properties?.ManagedPolicyArns ?? [])]),
  );
  return { roles, managedPolicies: managed, resourcePolicies, stateMachine: concreteAsl(template) };
}

describe('template snapshot (test/snapshots/template.json)', () => {
  it('matches the committed IAM statements, resource policies and state machine definition', () => {
    const { template } = synthesizeTemplate({ nag: false, bundle: false });
    const current = JSON.parse(JSON.stringify(snapshotOf(template))) as unknown;
    if (process.env.UPDATE_TEMPLATE_SNAPSHOT === '1') fs.writeFileSync(FILE, `${JSON.stringify(current, null, 2)}\n`);
    const committed = JSON.parse(fs.readFileSync(FILE, 'utf8')) as unknown;
    expect(current, 'the synthesized permissions or workflow changed: review the diff, then `npm run snapshot:update`').toEqual(committed);
  });
});
