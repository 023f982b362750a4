// The checks of `ecr-backup doctor` (cli/doctor.ts): each reads the deployed stack with the operator's
// credentials and answers ok, FAIL (with a one-line fix) or skip (does not apply to this stack).
// Clients are passed in so tests can point them at moto or replace one moto does not implement.
import {
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type CloudFormationClient,
  type Stack,
  type StackResourceSummary,
} from '@aws-sdk/client-cloudformation';
import { SimulatePrincipalPolicyCommand, type ContextEntry, type IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, type Credentials, type STSClient } from '@aws-sdk/client-sts';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetTopicAttributesCommand, type SNSClient } from '@aws-sdk/client-sns';
import { DescribeVpcEndpointsCommand, type EC2Client, type VpcEndpoint } from '@aws-sdk/client-ec2';
import { GetScheduleCommand, ListSchedulesCommand, type SchedulerClient } from '@aws-sdk/client-scheduler';
import { runKeys } from '../schema/contract.ts';

type CheckStatus = 'ok' | 'FAIL' | 'skip';

export interface Check {
  name: string;
  status: CheckStatus;
  /** What was found (for FAIL: what is wrong). */
  detail: string;
  /** One line telling the operator what to do; FAIL only. */
  fix?: string;
}

export interface DoctorClients {
  cloudformation: CloudFormationClient;
  iam: IAMClient;
  sts: STSClient;
  sns: SNSClient;
  ec2: EC2Client;
  scheduler: SchedulerClient;
  /** An S3 client acting with the given (assumed role's) credentials. */
  s3With(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, region: string): S3Client;
}

/** What the checks need to know about the deployed stack, from its outputs and resources. */
export interface StackFacts {
  stackName: string;
  partition: string;
  region: string;
  account: string;
  stateMachineArn: string;
  bucket: string;
  prefix: string;
  topicArn: string;
  roles: Partial<Record<RoleName, string>>;
  resources: StackResourceSummary[];
}

export type RoleName = 'backup task' | 'restore task' | 'listing Lambda' | 'summary Lambda' | 'prune Lambda';

/** Output keys (after the construct id, `EcrBackup` in the sample stack) the CLI and the checks use. */
export const REQUIRED_OUTPUTS = ['StateMachineArn', 'StoreUrl', 'BackupTaskRoleArn', 'RestoreTaskRoleArn', 'TopicArn'] as const;

/** Lambda roles are not outputs: found among the stack's resources by the logical ids infra/ecr-backup.ts gives them. */
export const LAMBDA_ROLES: ReadonlyArray<[RoleName, RegExp, boolean]> = [
  ['listing Lambda', /ListImagesRole[0-9A-F]{8}$/, true],
  ['summary Lambda', /SummarizeRunRole[0-9A-F]{8}$/, true],
  ['prune Lambda', /PruneStoreRole[0-9A-F]{8}$/, false],
];

const FIX_REDEPLOY = 'redeploy the stack from this version of ecr-backup (npm run deploy) so CloudFormation restores it';

/** DescribeStacks + ListStackResources: the stack's facts, or a FAIL check saying what is missing. */
export async function readStack(clients: DoctorClients, stackName: string): Promise<{ check: Check; facts?: StackFacts }> {
  const name = `stack ${stackName}`;
  let stack: Stack | undefined;
  try {
    stack = (await clients.cloudformation.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
  } catch (error) {
    if (!/does not exist/i.test((error as Error).message)) throw error;
  }
  if (!stack)
    return {
      check: {
        name,
        status: 'FAIL',
        detail: 'no such stack in this account and region',
        fix: 'check --stack, AWS_PROFILE and AWS_REGION, or deploy it (npm run deploy)',
      },
    };
  const status = stack.StackStatus ?? 'unknown';
  // A stack mid-operation or left failed may not match its outputs; UPDATE_ROLLBACK_COMPLETE is the
  // previous, working version.
  if (/_IN_PROGRESS$|FAILED$|^ROLLBACK_|^DELETE_|^IMPORT_ROLLBACK/.test(status)) {
    return {
      check: {
        name,
        status: 'FAIL',
        detail: `the stack is ${status}`,
        fix: "wait for the operation to finish, or read the stack's events in the CloudFormation console, repair it and redeploy (npm run deploy)",
      },
    };
  }
  const outputs = new Map((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  const find = (suffix: string) => [...outputs].find(([key]) => key.endsWith(suffix))?.[1];
  const missing = REQUIRED_OUTPUTS.filter((suffix) => !find(suffix));
  if (missing.length) {
    return { check: { name, status: 'FAIL', detail: `${status}, output(s) missing: ${missing.join(', ')}`, fix: FIX_REDEPLOY } };
  }
  const stateMachineArn = find('StateMachineArn')!;
  const arn = /^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\d{12}):stateMachine:/.exec(stateMachineArn);
  const store = /^s3:\/\/([^/]+)\/(.*)$/.exec(find('StoreUrl')!);
  if (!arn || !store)
    return { check: { name, status: 'FAIL', detail: `outputs malformed: ${stateMachineArn} / ${find('StoreUrl')}`, fix: FIX_REDEPLOY } };

  const resources: StackResourceSummary[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.cloudformation.send(new ListStackResourcesCommand({ StackName: stackName, NextToken: nextToken }));
    resources.push(...(page.StackResourceSummaries ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  const [, partition, region, account] = arn as unknown as [string, string, string, string];
  const roles: Partial<Record<RoleName, string>> = {
    'backup task': find('BackupTaskRoleArn')!,
    'restore task': find('RestoreTaskRoleArn')!,
  };
  for (const [role, logicalId] of LAMBDA_ROLES) {
    const found = resources.find((r) => r.ResourceType === 'AWS::IAM::Role' && logicalId.test(r.LogicalResourceId ?? ''));
    if (found?.PhysicalResourceId) roles[role] = `arn:${partition}:iam::${account}:role/${found.PhysicalResourceId}`;
  }
  const facts: StackFacts = {
    stackName,
    partition,
    region,
    account,
    stateMachineArn,
    bucket: store[1]!,
    prefix: store[2]!,
    topicArn: find('TopicArn')!,
    roles,
    resources,
  };
  return { check: { name, status: 'ok', detail: `${status}, ${outputs.size} outputs, ${resources.length} resources` }, facts };
}

interface Permission {
  role: RoleName;
  action: string;
  resource: (f: StackFacts, repository: string) => string;
  context?: (f: StackFacts) => ContextEntry[];
}

const object = (key: string) => (f: StackFacts) => `arn:${f.partition}:s3:::${f.bucket}/${f.prefix}${key}`;
const bucket = (f: StackFacts) => `arn:${f.partition}:s3:::${f.bucket}`;
const repo = (f: StackFacts, repository: string) => `arn:${f.partition}:ecr:${f.region}:${f.account}:repository/${repository}`;
const any = () => '*';
const BLOB = 'blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000';

/** The calls the workflow makes, per role, with the resources the code names (one row per call). */
export const PERMISSIONS: readonly Permission[] = [
  // listing Lambda (lambdas/list-images.ts)
  { role: 'listing Lambda', action: 'ecr:DescribeRepositories', resource: repo },
  { role: 'listing Lambda', action: 'ecr:DescribeImages', resource: repo },
  { role: 'listing Lambda', action: 'ecr:GetLifecyclePolicy', resource: repo },
  { role: 'listing Lambda', action: 'ecr:GetRepositoryPolicy', resource: repo },
  { role: 'listing Lambda', action: 'ecr:ListTagsForResource', resource: repo },
  { role: 'listing Lambda', action: 's3:ListBucket', resource: bucket },
  { role: 'listing Lambda', action: 's3:GetObject', resource: object('catalog/doctor/_tags/latest/0.json') },
  { role: 'listing Lambda', action: 's3:PutObject', resource: object(runKeys.batches('doctor')) },
  { role: 'listing Lambda', action: 's3:PutObject', resource: object('catalog/doctor/_settings/0.json') },
  // backup worker (worker/main.ts)
  { role: 'backup task', action: 'ecr:GetAuthorizationToken', resource: any },
  { role: 'backup task', action: 'ecr:BatchGetImage', resource: repo },
  { role: 'backup task', action: 'ecr:GetDownloadUrlForLayer', resource: repo },
  { role: 'backup task', action: 's3:ListBucket', resource: bucket },
  { role: 'backup task', action: 's3:GetObject', resource: object(BLOB) },
  { role: 'backup task', action: 's3:PutObject', resource: object(BLOB) },
  { role: 'backup task', action: 's3:PutObject', resource: object('catalog/doctor/_tags/latest/0.json') },
  { role: 'backup task', action: 's3:PutObject', resource: object(runKeys.result('doctor', 0, 0)) },
  // restore worker
  { role: 'restore task', action: 'ecr:GetAuthorizationToken', resource: any },
  { role: 'restore task', action: 'ecr:CreateRepository', resource: repo },
  { role: 'restore task', action: 'ecr:InitiateLayerUpload', resource: repo },
  { role: 'restore task', action: 'ecr:PutImage', resource: repo },
  { role: 'restore task', action: 's3:ListBucket', resource: bucket },
  { role: 'restore task', action: 's3:GetObject', resource: object(BLOB) },
  { role: 'restore task', action: 's3:GetObject', resource: object('catalog/doctor/_tags/latest/0.json') },
  { role: 'restore task', action: 's3:PutObject', resource: object(runKeys.result('doctor', 0, 0)) },
  // summary Lambda
  { role: 'summary Lambda', action: 's3:GetObject', resource: object(runKeys.result('doctor', 0, 0)) },
  { role: 'summary Lambda', action: 's3:PutObject', resource: object(runKeys.report('doctor')) },
  { role: 'summary Lambda', action: 'sns:Publish', resource: (f) => f.topicArn },
  // prune Lambda (only when the stack has one)
  { role: 'prune Lambda', action: 's3:DeleteObject', resource: object(BLOB) },
  { role: 'prune Lambda', action: 's3:PutObject', resource: object(runKeys.prune('doctor')) },
];

/** Whether `role` may call `action` on `resource`, by IAM's policy simulator (identity policies). */
async function simulate(
  clients: DoctorClients,
  roleArn: string,
  action: string,
  resource: string,
  context?: ContextEntry[],
): Promise<string> {
  const result = await clients.iam.send(
    new SimulatePrincipalPolicyCommand({
      PolicySourceArn: roleArn,
      ActionNames: [action],
      ResourceArns: [resource],
      ...(context ? { ContextEntries: context } : {}),
    }),
  );
  return result.EvaluationResults?.[0]?.EvalDecision ?? 'no result';
}

/** One check per role: every row of PERMISSIONS for it simulated as allowed. */
export async function checkPermissions(clients: DoctorClients, facts: StackFacts, repository: string): Promise<Check[]> {
  const checks: Check[] = [];
  for (const role of ['listing Lambda', 'backup task', 'restore task', 'summary Lambda', 'prune Lambda'] as const) {
    const name = `permissions: ${role} role`;
    const roleArn = facts.roles[role];
    if (!roleArn) {
      const required = LAMBDA_ROLES.find(([r]) => r === role)?.[2] ?? true;
      checks.push(
        required
          ? { name, status: 'FAIL', detail: "role not found among the stack's resources", fix: FIX_REDEPLOY }
          : { name, status: 'skip', detail: 'the stack has no prune step' },
      );
      continue;
    }
    const denied: string[] = [];
    const rows = PERMISSIONS.filter((p) => p.role === role);
    for (const p of rows) {
      const resource = p.resource(facts, repository);
      const decision = await simulate(clients, roleArn, p.action, resource, p.context?.(facts));
      if (decision !== 'allowed') denied.push(`${p.action} on ${resource} (${decision})`);
    }
    checks.push(
      denied.length
        ? {
            name,
            status: 'FAIL',
            detail: `denied: ${denied.join('; ')}`,
            fix: `the role's policy no longer grants what the workflow calls: ${FIX_REDEPLOY} (if only some repositories are backed up, pass --repository NAME of one)`,
          }
        : { name, status: 'ok', detail: `${rows.length} call(s) allowed (${roleArn})` },
    );
  }
  return checks;
}

/**
 * HEAD of a missing store key must answer 404, not 403, for the task role: every "is this blob
 * stored yet" check of a first backup depends on it. Assuming the role answers it for real; the
 * role's trust policy normally admits only ECS tasks, and then the simulator answers whether
 * s3:ListBucket (which S3 requires for a 404) holds for a request without an s3:prefix.
 */
export async function checkHeadMissing(clients: DoctorClients, facts: StackFacts): Promise<Check> {
  const name = 'store: HEAD of a missing key answers 404 for the backup task role';
  const fix = `grant the task roles s3:ListBucket on the bucket for requests without s3:prefix (StringLikeIfExists): ${FIX_REDEPLOY}`;
  const roleArn = facts.roles['backup task']!;
  let credentials: Credentials | undefined;
  try {
    credentials = (
      await clients.sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'ecr-backup-doctor', DurationSeconds: 900 }))
    ).Credentials;
  } catch {
    // Not allowed to assume it (the usual case): simulate instead.
  }
  if (credentials?.AccessKeyId && credentials.SecretAccessKey) {
    const s3 = clients.s3With(
      { accessKeyId: credentials.AccessKeyId, secretAccessKey: credentials.SecretAccessKey, sessionToken: credentials.SessionToken },
      facts.region,
    );
    const key = `${facts.prefix}${BLOB.slice(0, -6)}doctor`;
    try {
      await s3.send(new HeadObjectCommand({ Bucket: facts.bucket, Key: key }));
      return {
        name,
        status: 'FAIL',
        detail: `s3://${facts.bucket}/${key} exists: cannot test a missing key`,
        fix: 'delete that object (it is not a real blob)',
      };
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return { name, status: 'ok', detail: '404 (role assumed, HeadObject sent)' };
      return { name, status: 'FAIL', detail: `HeadObject answered ${status ?? (error as Error).name} (role assumed)`, fix };
    } finally {
      s3.destroy();
    }
  }
  const decision = await simulate(clients, roleArn, 's3:ListBucket', `arn:${facts.partition}:s3:::${facts.bucket}`);
  return decision === 'allowed'
    ? { name, status: 'ok', detail: 's3:ListBucket without s3:prefix simulated as allowed (role not assumable by you)' }
    : { name, status: 'FAIL', detail: `s3:ListBucket without s3:prefix simulated as ${decision}: S3 would answer 403`, fix };
}

/** The topic policy (which replaces SNS's default one) must let CloudWatch alarms publish. */
export async function checkTopicPolicy(clients: DoctorClients, facts: StackFacts): Promise<Check> {
  const name = 'notifications: the topic policy lets CloudWatch alarms publish';
  const attributes = (await clients.sns.send(new GetTopicAttributesCommand({ TopicArn: facts.topicArn }))).Attributes ?? {};
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
  const statements = list((JSON.parse(attributes.Policy ?? '{}') as { Statement?: unknown }).Statement) as Array<Record<string, unknown>>;
  const allows = statements.some((s) => {
    const service = list((s.Principal as { Service?: unknown } | undefined)?.Service);
    const actions = list(s.Action);
    return (
      s.Effect === 'Allow' &&
      service.includes('cloudwatch.amazonaws.com') &&
      actions.some((a) => a === 'sns:Publish' || a === 'sns:*' || a === '*')
    );
  });
  return allows
    ? { name, status: 'ok', detail: 'cloudwatch.amazonaws.com may sns:Publish' }
    : {
        name,
        status: 'FAIL',
        detail: `no Allow of sns:Publish for cloudwatch.amazonaws.com in ${facts.topicArn}'s policy: alarms go to ALARM and nobody hears`,
        fix: FIX_REDEPLOY,
      };
}

/** Services the worker reaches from isolated subnets (no NAT): one VPC endpoint each. */
const REQUIRED_ENDPOINTS = [
  ['s3', 'Gateway'],
  ['ecr.api', 'Interface'],
  ['ecr.dkr', 'Interface'],
  ['logs', 'Interface'],
  ['sts', 'Interface'],
] as const;

export async function checkEndpoints(clients: DoctorClients, facts: StackFacts): Promise<Check> {
  const name = 'network: VPC endpoints for the isolated subnets';
  const vpcId = facts.resources.find((r) => r.ResourceType === 'AWS::EC2::VPC')?.PhysicalResourceId;
  if (!vpcId)
    return { name, status: 'skip', detail: 'the stack uses an existing VPC: its subnets need a route to S3, ECR, CloudWatch Logs and STS' };
  const endpoints: VpcEndpoint[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.ec2.send(
      new DescribeVpcEndpointsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }], NextToken: nextToken }),
    );
    endpoints.push(...(page.VpcEndpoints ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  const missing = REQUIRED_ENDPOINTS.filter(
    ([service, type]) =>
      !endpoints.some(
        (e) =>
          e.ServiceName === `com.amazonaws.${facts.region}.${service}` &&
          e.VpcEndpointType === type &&
          !['deleted', 'deleting', 'failed', 'rejected'].includes((e.State ?? '').toLowerCase()),
      ),
  ).map(([service, type]) => `${service} (${type})`);
  return missing.length
    ? { name, status: 'FAIL', detail: `${vpcId} lacks: ${missing.join(', ')}; tasks there cannot reach them`, fix: FIX_REDEPLOY }
    : { name, status: 'ok', detail: `${vpcId}: ${REQUIRED_ENDPOINTS.map(([s]) => s).join(', ')}` };
}

/** The schedule that starts the state machine exists and is enabled (when the stack has one). */
export async function checkSchedule(clients: DoctorClients, facts: StackFacts): Promise<Check> {
  const name = 'schedule: enabled and starting the state machine';
  const names: Array<{ Name: string; GroupName?: string }> = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.scheduler.send(new ListSchedulesCommand({ NextToken: nextToken }));
    for (const s of page.Schedules ?? [])
      if (s.Target?.Arn === facts.stateMachineArn && s.Name) names.push({ Name: s.Name, GroupName: s.GroupName });
    nextToken = page.NextToken;
  } while (nextToken);
  if (names.length === 0) {
    const declared = facts.resources.some((r) => r.ResourceType === 'AWS::Scheduler::Schedule');
    return declared
      ? { name, status: 'FAIL', detail: 'the stack declares a schedule but none targets its state machine', fix: FIX_REDEPLOY }
      : { name, status: 'skip', detail: 'no schedule (deployed with schedule: null)' };
  }
  const disabled: string[] = [];
  for (const id of names) {
    const schedule = await clients.scheduler.send(new GetScheduleCommand(id));
    if (schedule.State !== 'ENABLED') disabled.push(`${id.Name} is ${schedule.State}`);
  }
  return disabled.length
    ? {
        name,
        status: 'FAIL',
        detail: disabled.join('; '),
        fix: `enable it: aws scheduler update-schedule (with its current settings and --state ENABLED), or ${FIX_REDEPLOY}`,
      }
    : { name, status: 'ok', detail: names.map((n) => `${n.Name} ENABLED`).join(', ') };
}
