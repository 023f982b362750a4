// Records every AWS API call the workflow's components make during local runs, through an SDK
// middleware on each client (installed by patching the client classes' `send` once per instance),
// and translates each into the IAM requests AWS would authorize for it (S3/ECR/SNS/CloudWatch/STS,
// with the KMS use SSE-KMS implies). In-process Lambdas and the harness's own state-machine work
// are attributed through AsyncLocalStorage; worker processes load record-aws-calls-preload.ts.
import { AsyncLocalStorage } from 'node:async_hooks';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { ECRClient } from '@aws-sdk/client-ecr';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { STSClient } from '@aws-sdk/client-sts';
import type { IamRequest } from './iam.ts';

/** Which role made a call: the Lambdas, the Fargate tasks, or the state machine itself. */
export type Component = 'list' | 'summarize' | 'prune' | 'backup' | 'restore' | 'stateMachine';

export interface RecordedCall {
  component: Component;
  client: string;
  command: string;
  input: Record<string, unknown>;
  region: string;
  /** HTTP status of an error response (404 of a HEAD, 403...). */
  errorStatus?: number;
}

export type CallSink = (call: RecordedCall) => void;
/** The component (and where its calls go) of the code running now. */
export const callContext = new AsyncLocalStorage<{ component: Component; sink: CallSink }>();
const CLIENTS = [S3Client, ECRClient, SNSClient, CloudWatchClient, STSClient];
const INSTALLED = Symbol.for('ecr-backup.test.call-recorder');

/** Patches the SDK clients of this process: calls inside `callContext.run` (or, in a worker process, all calls: `fixed`) are recorded. */
export function installCallRecorder(fixed?: { component: Component; sink: CallSink }): void {
  for (const Client of CLIENTS) {
    const proto = Client.prototype as unknown as { send: (...args: unknown[]) => unknown; [INSTALLED]?: boolean };
    if (proto[INSTALLED]) continue;
    proto[INSTALLED] = true;
    const send = proto.send;
    proto.send = function (
      this: { middlewareStack: { add: (...a: unknown[]) => void }; config: { region: () => Promise<string> }; [INSTALLED]?: boolean },
      ...args: unknown[]
    ) {
      // Own property: the prototype carries the same marker.
      if (!Object.hasOwn(this, INSTALLED)) {
        this[INSTALLED] = true;
        const config = this.config;
        this.middlewareStack.add(
          (next: (a: unknown) => Promise<unknown>, context: { clientName: string; commandName: string }) =>
            async (a: { input: Record<string, unknown> }) => {
              const where = callContext.getStore() ?? fixed;
              const record = async (errorStatus?: number) => {
                if (!where) return;
                const region = await config.region();
                where.sink({
                  component: where.component,
                  client: context.clientName,
                  command: context.commandName,
                  input: structuredCloneSafe(a.input),
                  region,
                  ...(errorStatus ? { errorStatus } : {}),
                });
              };
              try {
                const result = await next(a);
                await record();
                return result;
              } catch (error) {
                await record((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1);
                throw error;
              }
            },
          { step: 'initialize', name: 'ecrBackupTestCallRecorder' },
        );
      }
      return send.apply(this, args);
    };
  }
}

/** Inputs without bodies/streams (only the fields that name resources and conditions matter). */
function structuredCloneSafe(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input ?? {})) {
    if (k === 'Body' || v === undefined) continue;
    if (k === 'Delete')
      out[k] = {
        Objects: ((v as { Objects?: Array<{ Key: string; VersionId?: string }> }).Objects ?? []).map((o) => ({
          Key: o.Key,
          VersionId: o.VersionId,
        })),
      };
    else if (typeof v !== 'object' || v === null || Array.isArray(v)) out[k] = v;
    else out[k] = JSON.parse(JSON.stringify(v)) as unknown;
  }
  return out;
}

export interface TranslationContext {
  account: string;
  /** Bucket names of the runs -> the store bucket the template declares (else kept: another bucket). */
  bucketName: (bucket: string) => string;
  storeKeyArn?: string;
  topicKeyArn?: string;
}

/** The IAM requests AWS authorizes for one call. Unknown commands throw: add them here. */
export function iamRequests(call: RecordedCall, t: TranslationContext): IamRequest[] {
  const i = call.input as Record<string, string | undefined> & Record<string, unknown>;
  const action = call.command.replace(/Command$/, '');
  const viaS3 = { 'kms:ViaService': `s3.${call.region}.amazonaws.com` };
  switch (call.client) {
    case 'S3Client': {
      const bucket = t.bucketName(String(i.Bucket));
      const object = (key: unknown) => `arn:aws:s3:::${bucket}/${String(key)}`;
      const bucketArn = `arn:aws:s3:::${bucket}`;
      const decrypt =
        t.storeKeyArn && bucket !== String(i.Bucket) ? [{ action: 'kms:Decrypt', resource: t.storeKeyArn, context: viaS3 }] : [];
      const encrypt =
        t.storeKeyArn && bucket !== String(i.Bucket) ? [{ action: 'kms:GenerateDataKey', resource: t.storeKeyArn, context: viaS3 }] : [];
      const prefix = (p: unknown): Record<string, string> => (typeof p === 'string' ? { 's3:prefix': p } : {});
      const creation = (creates: boolean, ifNoneMatch?: unknown): Record<string, string> => ({
        's3:ObjectCreationOperation': String(creates),
        ...(typeof ifNoneMatch === 'string' ? { 's3:if-none-match': ifNoneMatch } : {}),
      });
      switch (action) {
        case 'GetObject':
        case 'HeadObject': {
          const read = { action: i.VersionId ? 's3:GetObjectVersion' : 's3:GetObject', resource: object(i.Key) };
          // A missing key answers 404 only to a caller allowed s3:ListBucket (no s3:prefix in that check).
          if (call.errorStatus === 404) return [read, { action: 's3:ListBucket', resource: bucketArn }];
          return [read, ...(call.errorStatus ? [] : decrypt)];
        }
        // s3:ObjectCreationOperation is true for the requests that create the object (and may carry
        // If-None-Match), false for the multipart steps before it.
        case 'PutObject':
          return [{ action: 's3:PutObject', resource: object(i.Key), context: creation(true, i.IfNoneMatch) }, ...encrypt];
        case 'CreateMultipartUpload':
          return [{ action: 's3:PutObject', resource: object(i.Key), context: creation(false) }, ...encrypt];
        case 'UploadPart':
          return [{ action: 's3:PutObject', resource: object(i.Key), context: creation(false) }];
        case 'CompleteMultipartUpload':
          return [{ action: 's3:PutObject', resource: object(i.Key), context: creation(true, i.IfNoneMatch) }];
        case 'AbortMultipartUpload':
          return [{ action: 's3:AbortMultipartUpload', resource: object(i.Key) }];
        case 'ListParts':
          return [{ action: 's3:ListMultipartUploadParts', resource: object(i.Key) }];
        case 'ListMultipartUploads':
          return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn, context: prefix(i.Prefix) }];
        case 'ListObjectsV2':
        case 'ListObjects':
        case 'HeadBucket':
          return [{ action: 's3:ListBucket', resource: bucketArn, context: prefix(i.Prefix) }];
        case 'ListObjectVersions':
          return [{ action: 's3:ListBucketVersions', resource: bucketArn, context: prefix(i.Prefix) }];
        case 'DeleteObject':
          return [{ action: i.VersionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject', resource: object(i.Key) }];
        case 'DeleteObjects':
          return ((i.Delete as unknown as { Objects: Array<{ Key: string; VersionId?: string }> }).Objects ?? []).map((o) => ({
            action: o.VersionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject',
            resource: object(o.Key),
          }));
        case 'GetObjectRetention':
        case 'GetObjectLegalHold':
          return [{ action: `s3:${action}`, resource: object(i.Key) }];
        case 'GetObjectLockConfiguration':
          return [{ action: 's3:GetBucketObjectLockConfiguration', resource: bucketArn }];
        default:
          throw new Error(`no IAM translation for S3 ${action}`);
      }
    }
    case 'ECRClient': {
      const registry = typeof i.registryId === 'string' ? i.registryId : t.account;
      const repo = (name: unknown) => `arn:aws:ecr:${call.region}:${registry}:repository/${String(name)}`;
      if (action === 'GetAuthorizationToken') return [{ action: 'ecr:GetAuthorizationToken', resource: '*' }];
      if (action === 'DescribeRepositories' && !i.repositoryNames) return [{ action: 'ecr:DescribeRepositories', resource: repo('*') }];
      if (action === 'DescribeRepositories')
        return (i.repositoryNames as unknown as string[]).map((n) => ({ action: 'ecr:DescribeRepositories', resource: repo(n) }));
      if (action === 'ListTagsForResource' || action === 'TagResource')
        return [{ action: `ecr:${action}`, resource: String(i.resourceArn) }];
      if (typeof i.repositoryName !== 'string') throw new Error(`no IAM translation for ECR ${action}`);
      return [{ action: `ecr:${action}`, resource: repo(i.repositoryName) }];
    }
    case 'SNSClient':
      if (action !== 'Publish') throw new Error(`no IAM translation for SNS ${action}`);
      return [
        { action: 'sns:Publish', resource: String(i.TopicArn) },
        ...(t.topicKeyArn
          ? ['kms:GenerateDataKey', 'kms:Decrypt'].map((a) => ({
              action: a,
              resource: t.topicKeyArn!,
              context: { 'kms:ViaService': `sns.${call.region}.amazonaws.com` },
            }))
          : []),
      ];
    case 'CloudWatchClient':
      if (action !== 'PutMetricData') throw new Error(`no IAM translation for CloudWatch ${action}`);
      return [{ action: 'cloudwatch:PutMetricData', resource: '*', context: { 'cloudwatch:namespace': String(i.Namespace) } }];
    case 'STSClient':
      if (action !== 'AssumeRole') throw new Error(`no IAM translation for STS ${action}`);
      return [{ action: 'sts:AssumeRole', resource: String(i.RoleArn) }];
    default:
      throw new Error(`no IAM translation for ${call.client}`);
  }
}
