// Offline IAM evaluation of the synthesized template with a real policy evaluator
// (@cloud-copilot/iam-simulate: identity + resource policies, conditions, KMS key-policy trust).
// Everything is resolved with the fake account/ARNs of test/harness/synthesized-workflow.ts, so a recorded call against
// a run's bucket is evaluated against the store bucket the template declares.
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { FAKE_ACCOUNT, FAKE_REGION, resolveValue, type CfnTemplate } from './synthesized-workflow.ts';

type Doc = { Version?: string; Statement: unknown[] };
export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/** One IAM-authorized request: what a component asked AWS to do. */
export interface IamRequest {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

export class TemplatePolicies {
  constructor(readonly template: CfnTemplate) {}

  private resolve<T>(value: unknown): T {
    return resolveValue(this.template, value) as T;
  }

  roleArn(roleLogicalId: string): string {
    return this.resolve<string>({ 'Fn::GetAtt': [roleLogicalId, 'Arn'] });
  }

  /** Inline policies of the role plus every AWS::IAM::Policy attached to it. */
  identityPolicies(roleLogicalId: string): Array<{ name: string; policy: Doc }> {
    const out: Array<{ name: string; policy: Doc }> = [];
    for (const [id, r] of Object.entries(this.template.Resources)) {
      if (
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties?.Roles as Array<{ Ref?: string }> | undefined)?.some((x) => x.Ref === roleLogicalId)
      ) {
        out.push({ name: id, policy: this.resolve<Doc>(r.Properties!.PolicyDocument) });
      }
    }
    const role = this.template.Resources[roleLogicalId];
    if (!role) throw new Error(`no role ${roleLogicalId}`);
    for (const p of (role.Properties?.Policies ?? []) as Array<{ PolicyName: string; PolicyDocument: unknown }>)
      out.push({ name: p.PolicyName, policy: this.resolve<Doc>(p.PolicyDocument) });
    return out;
  }

  /** The store bucket's name as the template's fakes resolve it. */
  storeBucketName(): string {
    const ids = Object.entries(this.template.Resources)
      .filter(([, r]) => r.Type === 'AWS::S3::Bucket')
      .map(([id]) => id);
    if (ids.length !== 1) throw new Error(`expected one bucket, found ${ids.length}`);
    return this.resolve<string>({ Ref: ids[0] });
  }

  storeKeyArn(): string | undefined {
    const bucket = Object.values(this.template.Resources).find((r) => r.Type === 'AWS::S3::Bucket');
    const enc = JSON.stringify(bucket?.Properties?.BucketEncryption ?? {});
    const id = /"Fn::GetAtt":\["([^"]+)","Arn"\]/.exec(enc)?.[1];
    return id ? this.resolve<string>({ 'Fn::GetAtt': [id, 'Arn'] }) : undefined;
  }

  /** The resource policy that governs `resource`: bucket policy, key policy or topic policy. */
  resourcePolicy(resource: string): Doc | undefined {
    for (const r of Object.values(this.template.Resources)) {
      if (r.Type === 'AWS::S3::BucketPolicy' && resource.startsWith(`arn:aws:s3:::${this.resolve<string>(r.Properties!.Bucket)}`))
        return this.resolve<Doc>(r.Properties!.PolicyDocument);
      if (r.Type === 'AWS::SNS::TopicPolicy' && (this.resolve<string[]>(r.Properties!.Topics) ?? []).includes(resource))
        return this.resolve<Doc>(r.Properties!.PolicyDocument);
    }
    for (const [id, r] of Object.entries(this.template.Resources)) {
      if (r.Type === 'AWS::KMS::Key' && this.resolve<string>({ 'Fn::GetAtt': [id, 'Arn'] }) === resource)
        return this.resolve<Doc>(r.Properties!.KeyPolicy);
    }
    return undefined;
  }

  /** The decision for `principal` (a role's logical id, or a service principal ARN-less name). */
  async decide(principal: { roleLogicalId: string } | { service: string }, request: IamRequest): Promise<Decision> {
    const isRole = 'roleLogicalId' in principal;
    const response = await runSimulation(
      {
        request: {
          principal: isRole ? this.roleArn(principal.roleLogicalId) : principal.service,
          action: request.action,
          resource: { resource: request.resource, accountId: FAKE_ACCOUNT },
          contextVariables: { 'aws:SecureTransport': 'true', 'aws:RequestedRegion': FAKE_REGION, ...request.context },
        },
        identityPolicies: isRole ? this.identityPolicies(principal.roleLogicalId) : [],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: this.resourcePolicy(request.resource),
      },
      {},
    );
    if (response.resultType === 'error')
      throw new Error(`simulation of ${request.action} on ${request.resource}: ${JSON.stringify(response.errors)}`);
    return response.overallResult as Decision;
  }
}
