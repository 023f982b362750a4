// The test configuration the CDK stack tests synthesize (distinctive values in place of cdk.json's
// ecrBackup sample), and reading a role's IAM statements and the ASL validator over the result.
import type { Asl } from './asl.ts';
import { createRequire } from 'node:module';
import type { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnRole, IRole } from 'aws-cdk-lib/aws-iam';
import type { EcrBackupContext } from '../../infra/context.ts';
import type { EcrBackupStack } from '../../infra/stack.ts';
import { STATE } from '../../schema/workflow-states.ts';
import { concreteAsl, synthesizeTemplate, type CfnTemplate } from './synthesized-workflow.ts';

const require = createRequire(import.meta.url);
export const aslValidator = require('asl-validator') as (
  definition: unknown,
  options?: { checkArn?: boolean; checkPaths?: boolean },
) => { isValid: boolean; errors: unknown[]; errorsText: (separator?: string) => string };

export const config: EcrBackupContext = {
  stackName: 'EcrBackupTest',
  repositories: ['team-a/**', 'shared/base'],
  schedule: { expression: 'cron(30 2 ? * MON-FRI *)', timeZone: 'Europe/Berlin' },
  prefix: 'backups/ecr',
  objectLock: { mode: 'GOVERNANCE', days: 35 },
  mapConcurrency: 7,
  failureTolerancePercent: 12,
  taskCpu: 2048,
  taskMemoryMiB: 8192,
  notificationEmail: 'ops@example.com',
  imageFormat: 'docker-archive',
  archiveLabel: 'singapore',
  archiveCompression: 'zstd',
  runsRetentionDays: 14,
  blobStorageClass: { storageClass: 'GLACIER_IR', afterDays: 45 },
  pushBackups: {},
  restoreDrill: { sample: 5 },
  dashboard: {},
  replica: {
    bucketName: 'ecr-backup-replica',
    region: 'eu-west-1',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  },
};

export type Statement = {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};
export const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

export interface TestStack {
  app: App;
  stack: EcrBackupStack;
  template: Template;
  json: CfnTemplate;
  asl: Asl;
}

/** Synthesizes the stack once with the test configuration plus `extra` settings. */
export function synthesizeTestStack(extra: Partial<EcrBackupContext> = {}): TestStack {
  const synth = synthesizeTemplate({ context: { ecrBackup: { ...config, ...extra } } });
  const json = synth.template;
  return {
    app: synth.app,
    stack: synth.stack,
    json,
    template: Template.fromJSON(json as unknown as Record<string, unknown>),
    asl: concreteAsl(json) as unknown as Asl,
  };
}

/** Every statement of the identity policies attached to a role. */
export function statementsOf({ stack, json }: TestStack, role: IRole): Statement[] {
  const logicalId = stack.resolve((role.node.defaultChild as CfnRole).logicalId) as string;
  const out: Statement[] = [];
  for (const r of Object.values(json.Resources)) {
    if (r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties?.Roles ?? []).includes(`"${logicalId}"`)) {
      out.push(...((r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement ?? []));
    }
  }
  const role_ = json.Resources[logicalId]!;
  for (const p of (role_.Properties?.Policies ?? []) as Array<{ PolicyDocument: { Statement: Statement[] } }>)
    out.push(...p.PolicyDocument.Statement);
  return out;
}

export const actionsOfRole = (synth: TestStack, role: IRole) =>
  new Set(
    statementsOf(synth, role)
      .filter((s) => s.Effect === 'Allow')
      .flatMap(actionsOf),
  );

/** The states every synthesized workflow has (the prune prop adds its own). */
export const WORKFLOW_STATES = [
  STATE.anythingToCopy,
  STATE.map,
  STATE.list,
  STATE.shardedListing,
  STATE.listShards,
  STATE.mergeShards,
  STATE.summarize,
  STATE.notifyListingFailed,
  STATE.listingFailed,
];
