// The doctor's permission table against the synthesized template, evaluated by a real IAM policy
// evaluator; no AWS emulator needed.
import { describe, expect, it } from 'vitest';
import { LAMBDA_ROLES, PERMISSIONS, REQUIRED_OUTPUTS, type RoleName, type StackFacts } from '../cli/doctor-checks.ts';
import type { CfnRole, IRole } from 'aws-cdk-lib/aws-iam';
import { FAKE_ACCOUNT, FAKE_PARTITION, FAKE_REGION, resolveValue, synthesizeTemplate } from './harness/synthesized-workflow.ts';
import { TemplatePolicies } from './harness/iam.ts';
import { PREFIX, STATE_MACHINE } from './harness/doctor-stack.ts';

// The doctor tests' scripted simulator (test/harness/doctor-stack.ts) allows everything; this proves the
// table it is asked about is what the real stack grants: every row, evaluated on the synthesized template
// by a real IAM policy evaluator, with the role and output names the doctor looks for.
describe("doctor's permission table against the synthesized template", () => {
  it('every (role, action, resource) row is allowed, and the doctor finds each role and output by name', async () => {
    const synth = synthesizeTemplate({
      context: {
        ecrBackup: { stackName: 'EcrBackupDoctorTable', repositories: ['team/**'], schedule: null, prefix: PREFIX, prune: { keepLast: 3 } },
      },
      nag: false,
      bundle: false,
    });
    const policies = new TemplatePolicies(synth.template);
    const outputs = (synth.template as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    for (const suffix of REQUIRED_OUTPUTS)
      expect(
        Object.keys(outputs).some((k) => k.endsWith(suffix)),
        suffix,
      ).toBe(true);
    const logicalId = (role: IRole) => synth.stack.resolve((role.node.defaultChild as CfnRole).logicalId) as string;
    const roleIds: Record<RoleName, string> = {
      'backup task': logicalId(synth.stack.backup.backupTaskDefinition.taskRole),
      'restore task': logicalId(synth.stack.backup.restoreTaskRole),
      'listing Lambda': logicalId(synth.stack.backup.listFunction.role!),
      'summary Lambda': logicalId(synth.stack.backup.summarizeFunction.role!),
      'prune Lambda': logicalId(synth.stack.backup.pruneFunction!.role!),
    };
    const roleIdsInTemplate = Object.entries(synth.template.Resources)
      .filter(([, r]) => r.Type === 'AWS::IAM::Role')
      .map(([id]) => id);
    for (const [role, pattern] of LAMBDA_ROLES)
      expect(
        roleIdsInTemplate.filter((id) => pattern.test(id)),
        role,
      ).toEqual([roleIds[role]]);

    const facts: StackFacts = {
      stackName: 'EcrBackupDoctorTable',
      partition: FAKE_PARTITION,
      region: FAKE_REGION,
      account: FAKE_ACCOUNT,
      stateMachineArn: STATE_MACHINE,
      bucket: policies.storeBucketName(),
      prefix: PREFIX,
      topicArn: resolveValue(synth.template, Object.entries(outputs).find(([k]) => k.endsWith('TopicArn'))![1].Value) as string,
      roles: {},
      resources: [],
    };
    const denied: string[] = [];
    for (const row of PERMISSIONS) {
      const resource = row.resource(facts, 'team/app');
      const context = Object.fromEntries((row.context?.(facts) ?? []).map((c) => [c.ContextKeyName!, c.ContextKeyValues![0]!]));
      const decision = await policies.decide({ roleLogicalId: roleIds[row.role] }, { action: row.action, resource, context });
      if (decision !== 'Allowed') denied.push(`${row.role}: ${row.action} on ${resource}: ${decision}`);
    }
    expect(denied).toEqual([]);
    expect(new Set(PERMISSIONS.map((p) => p.role))).toEqual(new Set(Object.keys(roleIds)));
  }, 240_000);
});
