// Evaluates the AWS calls recorded during local workflow runs (harness/aws-calls.ts) against the
// synthesized policies (harness/iam.ts): each component's role identity policy, the bucket policy
// and the KMS key policies. A call the template does not grant is a finding.
import { FAKE_ACCOUNT, resolveValue } from './synthesized-workflow.ts';
import { iamRequests, type Component } from './aws-calls.ts';
import { TemplatePolicies } from './iam.ts';
import type { LocalWorkflow } from './local-workflow-types.ts';

export interface CallEvaluation {
  /** Recorded calls per component (each translated into one or more IAM requests). */
  callsByRole: Partial<Record<Component, number>>;
  /** IAM requests evaluated per component (after translation, before de-duplication). */
  requestsByRole: Partial<Record<Component, number>>;
  /** `component: action on resource -> decision` for every request not allowed. */
  denied: string[];
}

export async function evaluateRecordedCalls(workflow: LocalWorkflow): Promise<CallEvaluation> {
  const policies = new TemplatePolicies(workflow.template);
  const store = policies.storeBucketName();
  const topicKey = Object.entries(workflow.template.Resources).find(
    ([id, r]) => r.Type === 'AWS::KMS::Key' && id.includes('TopicKey'),
  )?.[0];
  const context = {
    account: FAKE_ACCOUNT,
    bucketName: (bucket: string) => (workflow.runBuckets.has(bucket) ? store : bucket),
    storeKeyArn: policies.storeKeyArn(),
    topicKeyArn: topicKey ? String(resolveValue(workflow.template, { 'Fn::GetAtt': [topicKey, 'Arn'] })) : undefined,
  };
  const result: CallEvaluation = { callsByRole: {}, requestsByRole: {}, denied: [] };
  const decided = new Map<string, string>();
  for (const call of workflow.calls) {
    const roleLogicalId = workflow.roleOf[call.component];
    if (!roleLogicalId) throw new Error(`no role for component ${call.component}`);
    result.callsByRole[call.component] = (result.callsByRole[call.component] ?? 0) + 1;
    for (const request of iamRequests(call, context)) {
      result.requestsByRole[call.component] = (result.requestsByRole[call.component] ?? 0) + 1;
      const key = JSON.stringify([call.component, request]);
      if (!decided.has(key)) decided.set(key, await policies.decide({ roleLogicalId }, request));
      const decision = decided.get(key)!;
      if (decision !== 'Allowed')
        result.denied.push(
          `${call.component}: ${request.action} on ${request.resource} ${JSON.stringify(request.context ?? {})} -> ${decision} (${call.client} ${call.command})`,
        );
    }
  }
  result.denied = [...new Set(result.denied)];
  return result;
}
