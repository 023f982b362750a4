// Helpers for running the synthesized workflow locally (no AWS): the concrete ASL of the state
// machine with fake ARNs, and the worker's command and environment exactly as the task definitions
// give them, mapped to a local child process.
//
//   const { template } = synthesizeTemplate();               // in-process synth (cdk.json context)
//   const asl = concreteAsl(template);                        // States: 'List images', ...
//   const launch = workerLaunchForRunTask(template, runTaskParameters, { env: { STORE_URL: 's3://b/p/' } });
//   spawn(launch.localCommand[0], launch.localCommand.slice(1), { env: { ...process.env, ...launch.env } });
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { REPO_ROOT, WORKER_CONTAINER } from '../../infra/assets.ts';
import { ENV } from '../../schema/environment.ts';
import { createApp, type EcrBackupStack } from '../../infra/stack.ts';

export const FAKE_ACCOUNT = '123456789012';
export const FAKE_REGION = 'us-east-1';
export const FAKE_PARTITION = 'aws';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type CfnTemplate = { Resources: Record<string, { Type: string; Properties?: Record<string, Json> }> };

/** The `context` of cdk.json (what `cdk synth` sees). */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

/**
 * Synthesizes the sample stack in-process (cdk.json context, optionally overridden) and returns its
 * template. cdk-nag runs unless `nag: false`. Lambda bundling uses the local esbuild (~5-10 s, over
 * half of a synth) unless `bundle: false`: then the template is the same but for the Lambda assets'
 * hashes (CDK's `aws:cdk:bundling-stacks` context), for tests that never read the bundled code.
 */
export function synthesizeTemplate(options: { context?: Record<string, unknown>; nag?: boolean; outdir?: string; bundle?: boolean } = {}): {
  app: App;
  stack: EcrBackupStack;
  template: CfnTemplate;
} {
  const context = { ...cdkJsonContext(), ...(options.bundle === false ? { 'aws:cdk:bundling-stacks': [] } : {}), ...options.context };
  const { app, stack } = createApp({ context, nag: options.nag, outdir: options.outdir });
  const template = Template.fromStack(stack).toJSON() as CfnTemplate;
  return { app, stack, template };
}

/** Per-resource-type fake values for `Ref` and `Fn::GetAtt`. */
function fakeAttribute(template: CfnTemplate, logicalId: string, attribute: string | null): string {
  const resource = template.Resources[logicalId];
  if (!resource) throw new Error(`unresolvable reference to ${logicalId}`);
  const name = logicalId.toLowerCase().slice(0, 48);
  const hex = Buffer.from(logicalId).toString('hex').slice(-17).padStart(17, '0');
  const arn = (service: string, resourcePart: string, region = FAKE_REGION) =>
    `arn:${FAKE_PARTITION}:${service}:${region}:${FAKE_ACCOUNT}:${resourcePart}`;
  const props = resource.Properties ?? {};
  switch (resource.Type) {
    case 'AWS::Lambda::Function':
      return attribute === 'Arn' ? arn('lambda', `function:${name}`) : name;
    case 'AWS::ECS::Cluster':
      return attribute === 'Arn' ? arn('ecs', `cluster/${name}`) : name;
    case 'AWS::ECS::TaskDefinition':
      // Ref returns the ARN (family:revision)
      return arn('ecs', `task-definition/${typeof props.Family === 'string' ? props.Family : logicalId}:1`);
    case 'AWS::EC2::Subnet':
      return `subnet-${hex}`;
    case 'AWS::EC2::SecurityGroup':
      return `sg-${hex}`;
    case 'AWS::EC2::VPC':
      return attribute === 'CidrBlock' ? '10.0.0.0/16' : `vpc-${hex}`;
    case 'AWS::S3::Bucket': {
      const bucket = typeof props.BucketName === 'string' ? props.BucketName : name;
      if (attribute === 'Arn') return `arn:${FAKE_PARTITION}:s3:::${bucket}`;
      return bucket;
    }
    case 'AWS::SNS::Topic':
      return arn('sns', name);
    case 'AWS::IAM::Role':
      return attribute === 'Arn' ? `arn:${FAKE_PARTITION}:iam::${FAKE_ACCOUNT}:role/${name}` : name;
    case 'AWS::KMS::Key':
      return attribute === 'Arn' ? arn('kms', `key/${name}`) : name;
    case 'AWS::Logs::LogGroup':
      return attribute === 'Arn' ? arn('logs', `log-group:${name}:*`) : name;
    case 'AWS::StepFunctions::StateMachine':
      return attribute === 'Name' ? name : arn('states', `stateMachine:${name}`);
    default:
      return attribute ? `${name}.${attribute}` : name;
  }
}

export interface ResolveOptions {
  /** Values to use instead of the fakes: `{ [logicalId]: value }` for Ref, `{ 'LogicalId.Attr': value }` for GetAtt. */
  readonly overrides?: Record<string, string>;
}

/** Resolves Ref / Fn::GetAtt / Fn::Join / Fn::Select / Fn::Split / Fn::Sub in a template value. */
export function resolveValue(template: CfnTemplate, value: unknown, options: ResolveOptions = {}): unknown {
  const overrides = options.overrides ?? {};
  const pseudo: Record<string, string> = {
    'AWS::Partition': FAKE_PARTITION,
    'AWS::Region': FAKE_REGION,
    'AWS::AccountId': FAKE_ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'EcrBackup',
    'AWS::NoValue': '',
  };
  const ref = (id: string): string => overrides[id] ?? pseudo[id] ?? fakeAttribute(template, id, null);
  const getAtt = (id: string, attr: string): string => overrides[`${id}.${attr}`] ?? fakeAttribute(template, id, attr);
  const visit = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(visit);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      const [k] = keys as [string];
      const arg = o[k];
      switch (k) {
        case 'Ref':
          return ref(arg as string);
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? (arg as [string, string]) : ((arg as string).split('.') as [string, string]);
          return getAtt(id, attr);
        }
        case 'Fn::Join': {
          const [delimiter, parts] = arg as [string, unknown[]];
          return (visit(parts) as unknown[]).map(String).join(delimiter);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          return (visit(list) as unknown[])[Number(visit(index))];
        }
        case 'Fn::Split': {
          const [delimiter, source] = arg as [string, unknown];
          return String(visit(source)).split(delimiter);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [arg as string, {}];
          return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
            if (name in vars) return String(visit(vars[name]));
            const [id, attr] = name.split('.');
            return attr ? getAtt(id!, attr) : ref(id!);
          });
        }
        default:
          if (k.startsWith('Fn::')) throw new Error(`unsupported intrinsic ${k}`);
      }
    }
    return Object.fromEntries(keys.map((key) => [key, visit(o[key])]));
  };
  return visit(value);
}

/** Logical id of the (only, or first matching) state machine in the template. */
function stateMachineId(template: CfnTemplate, logicalIdPrefix?: string): string {
  const ids = Object.entries(template.Resources)
    .filter(([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && (!logicalIdPrefix || id.startsWith(logicalIdPrefix)))
    .map(([id]) => id);
  if (ids.length !== 1) throw new Error(`expected one state machine, found ${ids.length}`);
  return ids[0]!;
}

/** The state machine's ASL with every intrinsic resolved to fake (or overridden) values. */
export function concreteAsl(template: CfnTemplate, options: ResolveOptions & { stateMachine?: string } = {}): Record<string, unknown> {
  const sm = template.Resources[stateMachineId(template, options.stateMachine)]!;
  const props = sm.Properties ?? {};
  let text = resolveValue(template, props.DefinitionString, options) as string;
  const substitutions = (props.DefinitionSubstitutions ?? {}) as Record<string, unknown>;
  for (const [name, v] of Object.entries(substitutions)) text = text.split(`\${${name}}`).join(String(resolveValue(template, v, options)));
  return JSON.parse(text) as Record<string, unknown>;
}

export interface WorkerTask {
  readonly mode: 'backup' | 'restore';
  readonly logicalId: string;
  /** Task definition family: what the ASL's RunTask parameters carry as `TaskDefinition`. */
  readonly family: string;
  /** Fake ARN (family:1) of the task definition. */
  readonly taskDefinitionArn: string;
  readonly containerName: string;
  /** The container command as the task definition gives it (`node /app/worker.mjs`). */
  readonly command: string[];
  /** The container environment (intrinsics resolved to fakes or overrides). ENV.BATCH_KEY comes per task. */
  readonly environment: Record<string, string>;
}

/** Both worker task definitions as synthesized. */
export function workerTasks(template: CfnTemplate, options: ResolveOptions = {}): WorkerTask[] {
  const out: WorkerTask[] = [];
  for (const [logicalId, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::ECS::TaskDefinition') continue;
    const containers = (r.Properties?.ContainerDefinitions ?? []) as Array<Record<string, unknown>>;
    for (const c of containers) {
      const mode = (Object.keys(WORKER_CONTAINER) as Array<'backup' | 'restore'>).find((m) => WORKER_CONTAINER[m] === c.Name);
      if (!mode) continue;
      const environment = Object.fromEntries(
        ((resolveValue(template, c.Environment ?? [], options) as Array<{ Name: string; Value: string }>) ?? []).map((e) => [
          e.Name,
          String(e.Value),
        ]),
      );
      out.push({
        mode,
        logicalId,
        family: String(resolveValue(template, r.Properties?.Family ?? logicalId, options)),
        taskDefinitionArn: String(resolveValue(template, { Ref: logicalId }, options)),
        containerName: String(c.Name),
        command: (c.Command as string[] | undefined) ?? [],
        environment,
      });
    }
  }
  return out;
}

export interface WorkerLaunch extends WorkerTask {
  /** Command + environment of the container with the RunTask overrides applied. */
  readonly env: Record<string, string>;
  /** The same program run from source: `node --import tsx <repo>/worker/main.ts`. */
  readonly localCommand: string[];
}

/** The command the container runs maps to this local command (the image bundles worker/main.ts). */
function localWorkerCommand(containerCommand: readonly string[], repoRoot = REPO_ROOT): string[] {
  if (containerCommand.join(' ') !== 'node /app/worker.mjs') throw new Error(`unexpected worker command: ${containerCommand.join(' ')}`);
  return [process.execPath, '--import', 'tsx', path.join(repoRoot, 'worker/main.ts')];
}

/**
 * What to spawn for an `ecs:runTask.sync` state given its evaluated Parameters (as a local Step
 * Functions runner passes them): picks the task definition by ARN, applies the container overrides
 * (ENV.BATCH_KEY), then `options.env` (e.g. a local STORE_URL, endpoint variables).
 */
export function workerLaunchForRunTask(
  template: CfnTemplate,
  parameters: {
    TaskDefinition: string;
    Overrides?: { ContainerOverrides?: Array<{ Name: string; Environment?: Array<{ Name: string; Value: string }> }> };
  },
  options: ResolveOptions & { env?: Record<string, string>; repoRoot?: string } = {},
): WorkerLaunch {
  const ref = parameters.TaskDefinition;
  const task = workerTasks(template, options).find(
    (t) =>
      ref === t.family ||
      ref === t.taskDefinitionArn ||
      ref.startsWith(`${t.taskDefinitionArn.replace(/:\d+$/, '')}:`) ||
      ref.startsWith(`${t.family}:`),
  );
  if (!task) throw new Error(`no worker task definition matches ${ref}`);
  const overrides = (parameters.Overrides?.ContainerOverrides ?? []).find((o) => o.Name === task.containerName);
  const env: Record<string, string> = { ...task.environment };
  for (const e of overrides?.Environment ?? []) env[e.Name] = e.Value;
  Object.assign(env, options.env);
  if (!env[ENV.BATCH_KEY]) throw new Error(`RunTask parameters carry no ${ENV.BATCH_KEY} override`);
  return { ...task, env, localCommand: localWorkerCommand(task.command, options.repoRoot) };
}
