// The CDK stack with the optional prune step (prune prop), synthesized in-process: its state, its
// Lambda's settings, the only role allowed to delete, and cdk-nag.
import type { Asl } from './harness/asl.ts';
import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { concreteAsl, synthesizeTemplate, type CfnTemplate } from './harness/synthesized-workflow.ts';
import type { EcrBackupStack } from '../infra/stack.ts';
import { STATE } from '../schema/workflow-states.ts';
import { actionsOf, aslValidator, config, WORKFLOW_STATES, type Statement } from './harness/infra-stack.ts';

describe('optional prune step (prune prop)', () => {
  let pruneApp: App;
  let pruneStack: EcrBackupStack;
  let pruneJson: CfnTemplate;
  let pruneAsl: Asl;
  beforeAll(() => {
    const synth = synthesizeTemplate({ context: { ecrBackup: { ...config, prune: { keepLast: 3, keepDays: 30 } } }, bundle: false });
    pruneApp = synth.app;
    pruneStack = synth.stack;
    pruneJson = synth.template;
    pruneAsl = concreteAsl(pruneJson) as unknown as Asl;
  });

  it('adds a prune state after "Summarize run", for backup runs only', () => {
    const states = pruneAsl.States;
    expect(Object.keys(states).sort()).toEqual([...WORKFLOW_STATES, STATE.pruneAfterBackup, STATE.prune, STATE.done].sort());
    expect(states[STATE.summarize]).toMatchObject({ ResultPath: '$.summary', Next: STATE.pruneAfterBackup });
    expect(states[STATE.pruneAfterBackup]!.Choices).toEqual([{ Variable: '$.mode', StringEquals: 'backup', Next: STATE.prune }]);
    expect(states[STATE.pruneAfterBackup]!.Default).toBe(STATE.done);
    expect(states[STATE.done]).toMatchObject({ Type: 'Pass', OutputPath: '$.summary.Payload', End: true });
    expect(states[STATE.prune]).toMatchObject({ Type: 'Task', End: true, OutputPath: '$.Payload' });
    expect(states[STATE.prune]!.Parameters.Payload).toEqual({
      'runId.$': '$.runId',
      'summary.$': '$.summary.Payload',
      'input.$': '$$.Execution.Input',
    });
    const result = aslValidator(pruneAsl);
    expect(result.errorsText()).toBe('');
  });

  it('configures the prune Lambda with the rule and a grace period of the task timeout', () => {
    const template = Template.fromJSON(pruneJson as unknown as Record<string, unknown>);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Timeout: 900,
      MemorySize: 3008,
      Environment: {
        Variables: { PRUNE_KEEP_LAST: '3', PRUNE_KEEP_DAYS: '30', PRUNE_GRACE_SECONDS: String(6 * 3600), STORE_URL: Match.anyValue() },
      },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'backups/ecr/blobs/', NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
          Match.objectLike({ Prefix: 'backups/ecr/catalog/', NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
        ]),
      },
    });
  });

  it('gives only the prune role s3:DeleteObject on blobs/ and catalog/ (the listing role: deleted-repository markers only), and no version deletes', () => {
    const logicalId = pruneStack.resolve((pruneStack.backup.pruneFunction!.role!.node.defaultChild as CfnRole).logicalId) as string;
    const statements: Statement[] = [];
    const deleters = new Set<string>();
    for (const r of Object.values(pruneJson.Resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue;
      const doc = r.Properties!.PolicyDocument as { Statement: Statement[] };
      if (JSON.stringify(r.Properties?.Roles ?? []).includes(`"${logicalId}"`)) statements.push(...doc.Statement);
      for (const s of doc.Statement) {
        const actions = actionsOf(s);
        expect(actions).not.toContain('s3:DeleteObjectVersion');
        if (actions.includes('s3:DeleteObject') && !JSON.stringify(s.Resource).endsWith('catalog/_deleted/*"]]}'))
          for (const role of r.Properties!.Roles as Array<{ Ref: string }>) deleters.add(role.Ref);
      }
    }
    expect([...deleters]).toEqual([logicalId]);
    const del = statements.find((s) => actionsOf(s).includes('s3:DeleteObject'))!;
    expect(actionsOf(del)).toEqual(['s3:DeleteObject']);
    const resources = JSON.stringify(pruneStack.resolve(del.Resource));
    expect(resources).toContain('/backups/ecr/blobs/*');
    expect(resources).toContain('/backups/ecr/catalog/*');
    expect(resources).not.toContain('runs/');
    const writes = statements.filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(JSON.stringify(writes.map((s) => s.Resource))).toContain('/backups/ecr/runs/*/prune.json');
    expect(JSON.stringify(writes.map((s) => s.Resource))).not.toMatch(/blobs|catalog/);
    const actions = new Set(statements.flatMap(actionsOf));
    for (const a of [
      's3:GetObjectRetention',
      's3:GetObjectLegalHold',
      's3:GetBucketObjectLockConfiguration',
      's3:ListBucket',
      's3:GetObject',
    ])
      expect(actions).toContain(a);
    for (const a of actions) expect(a.startsWith('ecr:')).toBe(false);
  });

  it('passes cdk-nag AwsSolutions', () => {
    const report = new AwsSolutionsChecks(pruneApp).validateScope(pruneApp);
    const errors = report.violations.filter((v) => v.severity === 'error');
    expect(errors.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});
